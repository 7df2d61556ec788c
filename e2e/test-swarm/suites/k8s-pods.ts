import assert from 'node:assert/strict';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import { loadManifests, type ManifestDoc } from '../../test/k8s/manifests.js';
import { waitFor } from '../../lib/wait.js';
import { IMAGE_TAG, type SwarmCluster } from '../lib/swarm.js';

/** The namespace the manifests are applied to (kustomization.yaml), for `fieldRef: metadata.namespace`. */
const NAMESPACE = 'lcb';

/** The container's environment as the kubelet would set it: ConfigMap keys, the namespace, $(VAR). */
function envOf(c: IContainer, configMaps: readonly IConfigMap[]): string[] {
  const values = new Map<string, string>();
  for (const e of c.env ?? []) {
    let value = e.value;
    const cm = e.valueFrom?.configMapKeyRef;
    if (cm) value = configMaps.find((m) => m.metadata?.name === cm.name)?.data?.[cm.key];
    if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.namespace') value = NAMESPACE;
    if (value === undefined) throw new Error(`env ${e.name}: no value this test can produce`);
    values.set(e.name, value.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => values.get(name) ?? whole));
  }
  return [...values].map(([k, v]) => `${k}=${v}`);
}

/** `docker run` flags equivalent to the pod's and container's security settings and emptyDir mounts. */
function runFlags(spec: IPodSpec, c: IContainer): string[] {
  const sc = c.securityContext;
  const user = sc?.runAsUser ?? spec.securityContext?.runAsUser;
  const group = sc?.runAsGroup ?? spec.securityContext?.runAsGroup;
  assert.ok(user !== undefined, `${c.name}: numeric runAsUser`);
  const flags = ['--user', group === undefined ? String(user) : `${user}:${group}`];
  if (sc?.readOnlyRootFilesystem === true) flags.push('--read-only');
  for (const cap of sc?.capabilities?.drop ?? []) flags.push('--cap-drop', cap);
  if (sc?.allowPrivilegeEscalation === false) flags.push('--security-opt', 'no-new-privileges');
  const emptyDirs = new Set((spec.volumes ?? []).filter((v) => v.emptyDir !== undefined).map((v) => v.name));
  const fsGroup = spec.securityContext?.fsGroup ?? group ?? user;
  for (const m of c.volumeMounts ?? []) {
    if (!emptyDirs.has(m.name)) throw new Error(`${c.name}: volume ${m.name} is not an emptyDir; this test only maps emptyDirs`);
    // An emptyDir is an empty directory the pod's user can write (0777, group fsGroup). Docker's
    // tmpfs keeps the mode of the image's directory at that path, so it is given to the user instead.
    flags.push('--tmpfs', `${m.mountPath}:uid=${user},gid=${fsGroup}`);
  }
  return flags;
}

/** A probe from inside the container with bash's /dev/tcp (the nginx and node images both have bash). */
async function probe(c: SwarmCluster, container: string, port: number, path: string): Promise<string> {
  const res = await c.docker(['exec', container, 'bash', '-c', `exec 3<>/dev/tcp/127.0.0.1/${port} && printf 'GET ${path} HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3`], 15_000);
  return res.stdout.trim();
}

/**
 * The manifests' pod settings on the real images: each Deployment's image (as the Swarm suite
 * built it) runs with the same user, read-only root, dropped capabilities, no privilege escalation
 * and emptyDir mounts, without a network, and must pass its own readiness and liveness probes.
 * The offline validation checks the manifests; this checks that the images can live with them.
 */
export function k8sPodsSuite(cluster: () => SwarmCluster): void {
  describe('Kubernetes pod settings on the real images', () => {
    let docs: ManifestDoc[] = [];
    before(async () => {
      docs = (await loadManifests()).docs;
    });

    for (const name of ['backend', 'balancer', 'frontend']) {
      it(`${name}: runs as its manifest says (non-root, read-only root, no capabilities) and passes its probes`, async function () {
        this.timeout(90_000);
        const c = cluster();
        const deployment = docs.find((d) => d.object.kind === 'Deployment' && (d.object as unknown as IDeployment).metadata?.name === name)?.object as unknown as IDeployment | undefined;
        const configMaps = docs.filter((d) => d.object.kind === 'ConfigMap').map((d) => d.object as unknown as IConfigMap);
        const spec = deployment?.spec?.template.spec;
        const container = spec?.containers[0];
        assert.ok(spec && container, `Deployment ${name} with a container`);
        const image = (container.image ?? '').replace(/:[^:/]+$/, `:${IMAGE_TAG}`);
        const ports = new Map((container.ports ?? []).map((p) => [p.name ?? String(p.containerPort), p.containerPort]));
        const id = `${c.stack}-k8s-${name}`;
        await c.docker(['rm', '-f', id], 30_000).catch(() => undefined);
        try {
          const env = envOf(container, configMaps).flatMap((e) => ['--env', e]);
          // No network: nothing leaves the container (the balancer's discovery lookups just fail).
          // The stack's label: should this run die here, `swarm.sh down` removes the container too.
          const label = ['--label', `com.docker.stack.namespace=${c.stack}`];
          await c.docker(['run', '-d', '--name', id, '--network', 'none', ...label, ...runFlags(spec, container), ...env, image], 60_000);
          const uid = (await c.docker(['exec', id, 'id', '-u'])).stdout.trim();
          assert.equal(uid, String(container.securityContext?.runAsUser ?? spec.securityContext?.runAsUser), 'runs as the manifest\'s user');
          for (const [kind, p] of [['readiness', container.readinessProbe], ['liveness', container.livenessProbe]] as const) {
            const get = p?.httpGet;
            assert.ok(get?.path, `${kind} probe is an HTTP GET`);
            const port = typeof get.port === 'number' ? get.port : ports.get(get.port);
            assert.ok(port !== undefined, `${kind} probe port ${String(get.port)}`);
            const status = await waitFor(
              async () => {
                const line = await probe(c, id, port, get.path ?? '/');
                return line.includes(' 200 ') ? line : undefined;
              },
              { what: `${name}: ${kind} probe GET ${get.path ?? '/'} on ${port} answering 200`, timeoutMs: 30_000, intervalMs: 500 },
            );
            assert.match(status, /^HTTP\/1\.[01] 200 /);
          }
          const state = (await c.docker(['inspect', '--format', '{{.State.Status}} {{.RestartCount}}', id])).stdout.trim();
          assert.equal(state, 'running 0', 'still running, never restarted');
        } catch (err) {
          const logs = await c.docker(['logs', '--tail', '30', id], 30_000).catch(() => undefined);
          throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- ${id} logs ---\n${(logs?.stdout ?? '') + (logs?.stderr ?? '')}`, { cause: err });
        } finally {
          await c.docker(['rm', '-f', id], 30_000).catch(() => undefined);
        }
      });
    }
  });
}
