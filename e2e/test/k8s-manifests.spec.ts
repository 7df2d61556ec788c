/**
 * The Kubernetes manifests (deploy/k8s) validated offline on every `npm test`, and the validator
 * itself shown to reject broken manifests: each negative case breaks a copy of the real manifests
 * in one way and expects the matching problem.
 */
import assert from 'node:assert/strict';
import {
  consistencyProblems,
  kustomizationProblems,
  loadManifests,
  parseManifests,
  requirementProblems,
  schemaProblems,
  unknownFieldProblems,
  validateDocs,
  type ManifestDoc,
} from './k8s/manifests.js';

type Loaded = Awaited<ReturnType<typeof loadManifests>>;

const inventory = (docs: readonly ManifestDoc[]): string[] =>
  docs.map((d) => `${String(d.object.kind)}/${String((d.object.metadata as { name?: string } | undefined)?.name)}`).sort();

/** Negative cases break copies of the manifests in ways their types forbid: a deliberately loose type. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = Record<string, any>;

/** A deep copy of the real documents with one object changed by `change`. */
function broken(docs: readonly ManifestDoc[], kind: string, name: string, change: (o: Loose) => void): ManifestDoc[] {
  const copy = structuredClone(docs) as ManifestDoc[];
  const target = copy.find((d) => d.object.kind === kind && (d.object.metadata as { name?: string } | undefined)?.name === name);
  if (!target) throw new Error(`no ${kind}/${name} in deploy/k8s`);
  change(target.object);
  return copy;
}

const expectProblem = (problems: readonly string[], pattern: RegExp): void => {
  assert.ok(
    problems.some((p) => pattern.test(p)),
    `expected a problem matching ${String(pattern)}, got ${problems.length === 0 ? 'none' : JSON.stringify(problems, null, 1)}`,
  );
};

describe('Kubernetes manifests (deploy/k8s), validated offline', function () {
  // The unknown-field check builds a TypeScript program over the kubernetes-models types (1-3 s).
  this.timeout(60_000);
  let loaded: Loaded;
  let namespace: string | undefined;

  before(async () => {
    loaded = await loadManifests();
    namespace = kustomizationProblems(loaded.kustomization, loaded.files, loaded.docs).namespace;
  });

  it('every file parses as YAML (1.1, as kubectl reads it) without duplicate keys', () => {
    assert.deepEqual(loaded.problems, []);
    assert.deepEqual(inventory(loaded.docs), [
      'ConfigMap/lcb-settings',
      'Deployment/backend',
      'Deployment/balancer',
      'Deployment/frontend',
      'Namespace/lcb',
      'PodDisruptionBudget/backend',
      'PodDisruptionBudget/balancer',
      'Service/backend-headless',
      'Service/balancer',
      'Service/balancer-headless',
      'Service/frontend',
    ]);
  });

  it('kustomization.yaml lists every manifest file, sets the namespace and names every image', () => {
    const result = kustomizationProblems(loaded.kustomization, loaded.files, loaded.docs);
    assert.deepEqual(result.problems, []);
    assert.equal(result.namespace, 'lcb');
  });

  it('every object passes the Kubernetes schemas (kubernetes-models)', () => {
    assert.deepEqual(schemaProblems(loaded.docs), []);
  });

  it('no object has a field the Kubernetes API does not know (TypeScript excess-property check)', () => {
    assert.deepEqual(unknownFieldProblems(loaded.docs), []);
  });

  it('objects agree with each other; every pod is Pod Security "restricted", read-only, probed, with requests and limits', () => {
    assert.deepEqual(consistencyProblems(loaded.docs, namespace), []);
  });

  it('the cluster is complete: /healthz probes, a headless Service for discovery, Services, Prometheus annotations, a budget', () => {
    assert.deepEqual(requirementProblems(loaded.docs), []);
  });

  describe('the validator rejects broken manifests', () => {
    it('YAML: a duplicate key, a syntax error, a list instead of an object', () => {
      expectProblem(parseManifests('x.yaml', 'kind: Service\nkind: ConfigMap\n').problems, /x\.yaml#0: YAML: .*[Uu]nique/);
      expectProblem(parseManifests('x.yaml', 'metadata:\n  name: a\n   bad: indent\n').problems, /x\.yaml#0: YAML/);
      expectProblem(parseManifests('x.yaml', '- a\n- b\n').problems, /must be a mapping, got a list/);
    });

    it('YAML 1.1 like kubectl: an unquoted `yes` is a boolean, and an annotation must be a string', () => {
      const { docs } = parseManifests('x.yaml', 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations:\n    prometheus.io/scrape: yes\n');
      expectProblem(schemaProblems(docs), /x\.yaml#0 ConfigMap\/a: schema: .*annotations\/prometheus\.io~1scrape must be string/);
    });

    it('schema: an unknown or removed API, a string for a number, a missing required field, a value outside an enum', () => {
      const cases: [ManifestDoc[], RegExp][] = [
        [broken(loaded.docs, 'Deployment', 'backend', (o) => (o.apiVersion = 'apps/v1beta1')), /Deployment\/backend: unknown apiVersion\/kind "apps\/v1beta1\/Deployment"/],
        [broken(loaded.docs, 'Deployment', 'backend', (o) => (o.spec.replicas = 'four')), /Deployment\/backend: schema: .*spec\/replicas must be integer/],
        [broken(loaded.docs, 'Deployment', 'balancer', (o) => delete o.spec.selector), /Deployment\/balancer: schema: .*must have required property '?selector'?/],
        [broken(loaded.docs, 'Deployment', 'frontend', (o) => (o.spec.template.spec.containers[0].imagePullPolicy = 'Sometimes')), /imagePullPolicy must be equal to one of the allowed values/],
        [broken(loaded.docs, 'Service', 'balancer', (o) => (o.spec.ports[0].port = '8001')), /Service\/balancer: schema: .*ports\/0\/port must be integer/],
      ];
      for (const [docs, pattern] of cases) expectProblem(schemaProblems(docs), pattern);
    });

    it('unknown fields: a misspelt probe and a misplaced key are named with their path', () => {
      // TypeScript reports the first unknown field of each document: break two documents.
      const misspelt = broken(loaded.docs, 'Deployment', 'backend', (o) => {
        const c = o.spec.template.spec.containers[0];
        c.readinesProbe = c.readinessProbe;
        delete c.readinessProbe;
      });
      const docs = broken(misspelt, 'Deployment', 'balancer', (o) => (o.spec.template.spec.replicas = 3));
      const problems = unknownFieldProblems(docs);
      // The schemas alone let both through, which is why this layer exists.
      assert.deepEqual(schemaProblems(docs), []);
      expectProblem(problems, /backend\.yaml#0 Deployment\/backend: spec\.template\.spec\.containers\[0\]\.readinesProbe: .*'"?readinesProbe"?' does not exist in type 'IContainer'/);
      expectProblem(problems, /balancer\.yaml#0 Deployment\/balancer: spec\.template\.spec\.replicas: .*'"?replicas"?' does not exist/);
      assert.equal(problems.length, 2, JSON.stringify(problems));
    });

    it('consistency: selectors, named ports, ConfigMap keys, $(VAR) order, Service target ports, budgets', () => {
      const cases: [ManifestDoc[], RegExp][] = [
        [broken(loaded.docs, 'Deployment', 'backend', (o) => (o.spec.template.metadata.labels['app.kubernetes.io/name'] = 'backends')), /Deployment\/backend: spec\.selector\.matchLabels does not match/],
        [broken(loaded.docs, 'Deployment', 'backend', (o) => (o.spec.template.spec.containers[0].ports[0].name = 'web')), /container backend: readinessProbe uses port "http", which the container does not name/],
        [broken(loaded.docs, 'ConfigMap', 'lcb-settings', (o) => delete o.data.LB_RETRIES), /Deployment\/balancer: container balancer: env LB_RETRIES reads key "LB_RETRIES", which ConfigMap lcb-settings does not have/],
        [
          broken(loaded.docs, 'Deployment', 'balancer', (o) => {
            const env = o.spec.template.spec.containers[0].env as unknown[];
            env.push(env.shift());
          }),
          /env LB_DISCOVERY_DNS uses \$\(POD_NAMESPACE\), which is not defined before it/,
        ],
        [broken(loaded.docs, 'Service', 'balancer', (o) => (o.spec.ports[1].targetPort = 'metrics')), /Service\/balancer: port admin: targetPort metrics is not a port of balancer's containers/],
        [broken(loaded.docs, 'Service', 'frontend', (o) => (o.spec.selector['app.kubernetes.io/name'] = 'nginx')), /Service\/frontend: spec\.selector .* selects no Deployment's pods/],
        [broken(loaded.docs, 'PodDisruptionBudget', 'backend', (o) => ((o.spec.minAvailable = 4), delete o.spec.maxUnavailable)), /minAvailable 4 >= 4 replicas of backend: no pod could ever be evicted/],
        [broken(loaded.docs, 'Deployment', 'backend', (o) => (o.spec.template.metadata.annotations['prometheus.io/port'] = '9102')), /prometheus\.io\/port 9102 is not a container port/],
        [broken(loaded.docs, 'Service', 'balancer', (o) => (o.metadata.namespace = 'default')), /Service\/balancer: metadata\.namespace "default" differs from the kustomization's "lcb"/],
      ];
      for (const [docs, pattern] of cases) expectProblem(consistencyProblems(docs, 'lcb'), pattern);
    });

    it('policy: root, privilege escalation, capabilities, writable root, host paths, missing limits or probes', () => {
      const container = (name: string, change: (c: Loose, pod: Loose) => void): ManifestDoc[] =>
        broken(loaded.docs, 'Deployment', name, (o) => {
          change(o.spec.template.spec.containers[0], o.spec.template.spec);
        });
      const cases: [ManifestDoc[], RegExp][] = [
        [container('backend', (_c, pod) => (pod.securityContext.runAsUser = 0)), /container backend: runAsUser 0 is root/],
        [container('backend', (_c, pod) => delete pod.securityContext.runAsNonRoot), /container backend: runAsNonRoot must be true/],
        [container('balancer', (c) => (c.securityContext.allowPrivilegeEscalation = true)), /container balancer: allowPrivilegeEscalation must be false/],
        [container('balancer', (c) => (c.securityContext.capabilities = { add: ['NET_ADMIN'] })), /capabilities\.drop must include ALL.*|capability NET_ADMIN may not be added/],
        [container('frontend', (c) => (c.securityContext.readOnlyRootFilesystem = false)), /container nginx: readOnlyRootFilesystem must be true/],
        [container('frontend', (_c, pod) => (pod.volumes[0] = { name: 'conf', hostPath: { path: '/etc/nginx' } })), /volume conf: type hostPath is not allowed/],
        [container('backend', (c) => delete c.resources.limits.memory), /container backend: needs resources\.requests and resources\.limits for memory/],
        [container('backend', (c) => (c.resources.requests.cpu = '2')), /container backend: cpu request 2 exceeds its limit 500m/],
        [container('balancer', (c) => delete c.livenessProbe), /container balancer: needs a readinessProbe and a livenessProbe/],
        [container('frontend', (_c, pod) => delete pod.enableServiceLinks), /Deployment\/frontend: enableServiceLinks must be false/],
      ];
      for (const [docs, pattern] of cases) expectProblem(consistencyProblems(docs, 'lcb'), pattern);
    });

    it('requirements: the discovery Service must be headless, exist and select the backends; a budget must cover them', () => {
      expectProblem(requirementProblems(broken(loaded.docs, 'Service', 'backend-headless', (o) => delete o.spec.clusterIP)), /must be headless \(clusterIP: None\)/);
      const renamed = broken(loaded.docs, 'Deployment', 'balancer', (o) => {
        const env = (o.spec.template.spec.containers[0].env as { name: string; value?: string }[]).find((e) => e.name === 'LB_DISCOVERY_DNS');
        assert.ok(env);
        env.value = 'backend.$(POD_NAMESPACE).svc.cluster.local';
      });
      expectProblem(requirementProblems(renamed), /LB_DISCOVERY_DNS "backend\.\$\(POD_NAMESPACE\)\.svc\.cluster\.local" names no Service/);
      expectProblem(requirementProblems(broken(loaded.docs, 'Deployment', 'backend', (o) => (o.spec.template.spec.containers[0].readinessProbe.httpGet.path = '/'))), /probes must be HTTP GET \/healthz/);
      expectProblem(requirementProblems(loaded.docs.filter((d) => d.object.kind !== 'PodDisruptionBudget')), /missing a PodDisruptionBudget for the backend pods/);
    });

    it('requirements: the balancers\' peer Service must be headless, select them and carry UDP 9001; two replicas at least', () => {
      expectProblem(requirementProblems(broken(loaded.docs, 'Service', 'balancer-headless', (o) => delete o.spec.clusterIP)), /Service balancer-headless must be headless/);
      expectProblem(requirementProblems(broken(loaded.docs, 'Service', 'balancer-headless', (o) => (o.spec.selector['app.kubernetes.io/name'] = 'backend'))), /Service balancer-headless does not select the balancer pods/);
      const tcpOnly = (ports: unknown): unknown[] => (ports as { protocol?: string }[]).filter((p) => p.protocol !== 'UDP');
      expectProblem(requirementProblems(broken(loaded.docs, 'Service', 'balancer-headless', (o) => (o.spec.ports = tcpOnly(o.spec.ports)))), /has no UDP port 9001/);
      expectProblem(
        requirementProblems(broken(loaded.docs, 'Deployment', 'balancer', (o) => (o.spec.template.spec.containers[0].ports = tcpOnly(o.spec.template.spec.containers[0].ports)))),
        /container port 9001\/UDP \(the peer port\) is not declared/,
      );
      expectProblem(requirementProblems(broken(loaded.docs, 'Deployment', 'balancer', (o) => (o.spec.replicas = 1))), /balancer: at least 2 replicas/);
      const unnamed = broken(loaded.docs, 'Deployment', 'balancer', (o) => {
        const c = o.spec.template.spec.containers[0] as { env: { name: string }[] };
        c.env = c.env.filter((e) => e.name !== 'LB_PEERS_DNS');
      });
      expectProblem(requirementProblems(unnamed), /LB_PEERS_DNS "" names no Service/);
    });

    it('kustomization: a manifest file left out of resources, an image it cannot retarget', () => {
      const k = structuredClone(loaded.kustomization) as { resources: string[]; images: { name: string }[] };
      k.resources = k.resources.filter((r) => r !== 'frontend.yaml');
      k.images = k.images.filter((i) => i.name !== 'lcb-balancer');
      const { problems } = kustomizationProblems(k, loaded.files, loaded.docs);
      expectProblem(problems, /resources \[.*\] must be exactly the manifest files/);
      expectProblem(problems, /Deployment\/balancer: image lcb-balancer:local is not in kustomization\.yaml images/);
    });

    it('validateDocs runs every layer: one broken copy, problems from schema, fields and consistency together', () => {
      const docs = broken(loaded.docs, 'Deployment', 'frontend', (o) => {
        o.spec.template.spec.containers[0].securityContext.runAsUserr = 0;
      });
      const withSchemaError = broken(docs, 'Service', 'balancer', (o) => (o.spec.type = 'Headless'));
      const problems = validateDocs(withSchemaError, 'lcb');
      expectProblem(problems, /Service\/balancer: schema: .*spec\/type must be equal to one of the allowed values/);
      expectProblem(problems, /Deployment\/frontend: spec\.template\.spec\.containers\[0\]\.securityContext\.runAsUserr/);
      assert.deepEqual(validateDocs(loaded.docs, 'lcb'), [], 'the real manifests pass every layer');
    });
  });
});
