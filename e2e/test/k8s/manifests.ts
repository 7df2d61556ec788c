/**
 * Offline validation of the Kubernetes manifests in deploy/k8s: no cluster, no network, nothing
 * downloaded. Four layers, each returning readable problems ("file#doc Kind/name: path: message"):
 *
 * 1. YAML: parsed as YAML 1.1 like kubectl (so `yes` is a boolean there too), duplicate keys fail.
 * 2. Schema: the Kubernetes OpenAPI schemas compiled into `kubernetes-models` (types, required
 *    fields, enums, formats, int-or-string), through each model's validate().
 * 3. Unknown fields: the API server rejects them (strict field validation) but those schemas allow
 *    them, so every object is also type-checked as a TypeScript object literal against the same
 *    package's interfaces, whose excess-property check names a misspelt `readinesProbe`.
 * 4. Consistency and policy: what the API server or the running cluster would trip over across
 *    objects (selectors, named ports, ConfigMap keys, `$(VAR)` order, the discovery name), and
 *    what this project requires of every pod (Pod Security "restricted", read-only root,
 *    probes, requests and limits, Prometheus annotations, a budget for the backends).
 */
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Ingress } from 'kubernetes-models/networking.k8s.io/v1/Ingress';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IPodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import type { IContainer } from 'kubernetes-models/v1/Container';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import { Secret } from 'kubernetes-models/v1/Secret';
import type { IService } from 'kubernetes-models/v1/Service';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';

const here = dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = resolve(here, '../../..');
export const K8S_DIR = join(REPO_ROOT, 'deploy/k8s');

/** One YAML document of a manifest file. */
export interface ManifestDoc {
  /** Path relative to the repository root. */
  file: string;
  /** Position of the document in its file, from 0. */
  index: number;
  object: Record<string, unknown>;
}

type Validator = (data: unknown) => void;

/** A kind this validator knows: its model (schema) and its TypeScript interface (fields). */
interface Kind {
  validate: Validator;
  module: string;
  type: string;
  namespaced: boolean;
}

const kind = (model: new (data: never) => { validate(): void }, module: string, type: string, namespaced = true): Kind => ({
  validate: (data) => {
    new model(data as never).validate();
  },
  module: `kubernetes-models/${module}`,
  type,
  namespaced,
});

/** `apiVersion/kind` -> model. Anything else (a typo, a removed API such as apps/v1beta1) fails. */
export const KINDS: ReadonlyMap<string, Kind> = new Map([
  ['v1/Namespace', kind(Namespace, 'v1/Namespace', 'INamespace', false)],
  ['v1/ConfigMap', kind(ConfigMap, 'v1/ConfigMap', 'IConfigMap')],
  ['v1/Secret', kind(Secret, 'v1/Secret', 'ISecret')],
  ['v1/Service', kind(Service, 'v1/Service', 'IService')],
  ['v1/ServiceAccount', kind(ServiceAccount, 'v1/ServiceAccount', 'IServiceAccount')],
  ['apps/v1/Deployment', kind(Deployment, 'apps/v1/Deployment', 'IDeployment')],
  ['apps/v1/StatefulSet', kind(StatefulSet, 'apps/v1/StatefulSet', 'IStatefulSet')],
  ['policy/v1/PodDisruptionBudget', kind(PodDisruptionBudget, 'policy/v1/PodDisruptionBudget', 'IPodDisruptionBudget')],
  ['networking.k8s.io/v1/NetworkPolicy', kind(NetworkPolicy, 'networking.k8s.io/v1/NetworkPolicy', 'INetworkPolicy')],
  ['networking.k8s.io/v1/Ingress', kind(Ingress, 'networking.k8s.io/v1/Ingress', 'IIngress')],
  ['autoscaling/v2/HorizontalPodAutoscaler', kind(HorizontalPodAutoscaler, 'autoscaling/v2/HorizontalPodAutoscaler', 'IHorizontalPodAutoscaler')],
]);

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const kindKey = (o: Record<string, unknown>): string => `${str(o.apiVersion)}/${str(o.kind)}`;
const nameOf = (o: Record<string, unknown>): string => (isRecord(o.metadata) ? str(o.metadata.name) : '');

/** "deploy/k8s/backend.yaml#0 Deployment/backend" */
export const labelOf = (d: ManifestDoc): string => `${d.file}#${d.index} ${str(d.object.kind) || '?'}/${nameOf(d.object) || '?'}`;

// ---- 1. YAML --------------------------------------------------------------------------------

/** Parses one file's text into documents; empty documents (a trailing `---`) are skipped. */
export function parseManifests(file: string, text: string): { docs: ManifestDoc[]; problems: string[] } {
  const docs: ManifestDoc[] = [];
  const problems: string[] = [];
  // YAML 1.1 like kubectl (sigs.k8s.io/yaml): `on`, `yes`, `no` are booleans, as the cluster would see them.
  parseAllDocuments(text, { version: '1.1', uniqueKeys: true, prettyErrors: true }).forEach((doc, index) => {
    for (const e of [...doc.errors, ...doc.warnings]) problems.push(`${file}#${index}: YAML: ${e.message.split('\n')[0] ?? ''}`);
    if (doc.errors.length > 0) return;
    const object: unknown = doc.toJS();
    if (object === null || object === undefined) return;
    if (!isRecord(object)) {
      problems.push(`${file}#${index}: a manifest must be a mapping, got ${Array.isArray(object) ? 'a list' : typeof object}`);
      return;
    }
    docs.push({ file, index, object });
  });
  return { docs, problems };
}

/** Every *.yaml / *.yml of deploy/k8s except kustomization.yaml, plus that file's own content. */
export async function loadManifests(dir = K8S_DIR): Promise<{ docs: ManifestDoc[]; problems: string[]; files: string[]; kustomization: unknown }> {
  const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  const docs: ManifestDoc[] = [];
  const problems: string[] = [];
  let kustomization: unknown;
  for (const f of files) {
    const rel = join('deploy/k8s', f);
    const parsed = parseManifests(rel, await readFile(join(dir, f), 'utf8'));
    problems.push(...parsed.problems);
    if (f === 'kustomization.yaml') kustomization = parsed.docs[0]?.object;
    else docs.push(...parsed.docs);
  }
  return { docs, problems, files: files.filter((f) => f !== 'kustomization.yaml'), kustomization };
}

// ---- 2. schema ------------------------------------------------------------------------------

export function schemaProblems(docs: readonly ManifestDoc[]): string[] {
  const problems: string[] = [];
  for (const d of docs) {
    const k = KINDS.get(kindKey(d.object));
    if (!k) {
      problems.push(`${labelOf(d)}: unknown apiVersion/kind "${kindKey(d.object)}" (known: ${[...KINDS.keys()].join(', ')})`);
      continue;
    }
    try {
      k.validate(d.object);
    } catch (err) {
      problems.push(`${labelOf(d)}: schema: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  return problems;
}

// ---- 3. unknown fields ------------------------------------------------------------------------

/** The property path (`spec.template.spec.containers[0].readinesProbe`) of the node at `pos`. */
function pathAt(sf: ts.SourceFile, pos: number): string {
  let node: ts.Node = sf;
  for (;;) {
    const child: ts.Node | undefined = node.forEachChild((c) => (c.getStart(sf) <= pos && pos < c.getEnd() ? c : undefined));
    if (!child) break;
    node = child;
  }
  const parts: string[] = [];
  for (let n = node; !ts.isVariableDeclaration(n) && !ts.isSourceFile(n); n = n.parent) {
    if (ts.isPropertyAssignment(n) && ts.isStringLiteral(n.name)) parts.unshift(n.name.text);
    if (ts.isArrayLiteralExpression(n.parent)) parts.unshift(`[${n.parent.elements.indexOf(n as ts.Expression)}]`);
  }
  return parts.join('.').replace(/\.\[/g, '[');
}

/**
 * Type-checks each document as `const doc: IKind = <its JSON>` with the TypeScript compiler, in
 * memory: excess-property checks find fields the Kubernetes API does not have, at any depth.
 */
export function unknownFieldProblems(docs: readonly ManifestDoc[]): string[] {
  const checked = docs.filter((d) => KINDS.has(kindKey(d.object)));
  if (checked.length === 0) return [];
  // Beside this file, so that `kubernetes-models` resolves from e2e/node_modules or the root's.
  const fileName = join(here, '__k8s_manifests_typecheck__.ts');
  const owners: ManifestDoc[] = [];
  const source = checked
    .map((d, i) => {
      const k = KINDS.get(kindKey(d.object));
      owners.push(d);
      return `export const doc${i}: import(${JSON.stringify(k?.module)}).${k?.type ?? 'never'} = ${JSON.stringify(d.object, null, 1)};\n`;
    })
    .join('');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
    types: [],
    lib: ['lib.es2022.d.ts'],
  };
  const host = ts.createCompilerHost(options);
  const sf = ts.createSourceFile(fileName, source, ts.ScriptTarget.ES2022, true);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const read = host.readFile.bind(host);
  host.getSourceFile = (name, ...rest) => (name === fileName ? sf : getSourceFile(name, ...rest));
  host.fileExists = (name) => name === fileName || fileExists(name);
  host.readFile = (name) => (name === fileName ? source : read(name));
  const program = ts.createProgram([fileName], options, host);
  const diagnostics = [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)];
  return diagnostics.map((diag) => {
    const message = ts.flattenDiagnosticMessageText(diag.messageText, ' ');
    if (diag.start === undefined) return `typecheck: ${message}`;
    const statement = sf.statements.find((s) => s.getStart(sf) <= (diag.start ?? 0) && (diag.start ?? 0) < s.getEnd());
    const owner = statement ? owners[sf.statements.indexOf(statement)] : undefined;
    return `${owner ? labelOf(owner) : 'typecheck'}: ${pathAt(sf, diag.start)}: ${message}`;
  });
}

// ---- 4. consistency and policy ---------------------------------------------------------------

/** Ports of a pod template: name -> number, plus the numbers. */
const portsOf = (c: IContainer): { byName: Map<string, number>; numbers: Set<number> } => ({
  byName: new Map((c.ports ?? []).filter((p) => p.name !== undefined).map((p) => [p.name ?? '', p.containerPort])),
  numbers: new Set((c.ports ?? []).map((p) => p.containerPort)),
});

const matches = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** CPU in millicores, memory in bytes; undefined when unparsable. */
export function parseQuantity(q: number | string | undefined): number | undefined {
  if (q === undefined) return undefined;
  if (typeof q === 'number') return q;
  const m = /^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(q);
  if (!m) return undefined;
  const factor: Record<string, number> = { '': 1, m: 0.001, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4 };
  return Number(m[1]) * (factor[m[2] ?? ''] ?? NaN);
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Volume types that Pod Security "restricted" allows. */
const RESTRICTED_VOLUMES = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']);

/** The kinds the cross-object checks read, as their kubernetes-models interfaces. */
interface Typed {
  'apps/v1/Deployment': IDeployment;
  'v1/Service': IService;
  'v1/ConfigMap': IConfigMap;
  'policy/v1/PodDisruptionBudget': IPodDisruptionBudget;
}

/** Documents of one kind, typed: only for documents that passed the schema. */
function objectsOf<K extends keyof Typed>(docs: readonly ManifestDoc[], key: K): { doc: ManifestDoc; o: Typed[K] }[] {
  return docs.filter((d) => kindKey(d.object) === key).map((doc) => ({ doc, o: doc.object as unknown as Typed[K] }));
}

interface Pod {
  owner: string;
  doc: ManifestDoc;
  labels: Record<string, string> | undefined;
  annotations: Record<string, string> | undefined;
  spec: IPodSpec;
}

/** Cross-object checks and the project's rules. Run on documents that passed the schema. */
export function consistencyProblems(docs: readonly ManifestDoc[], namespace: string | undefined): string[] {
  const problems: string[] = [];
  const add = (d: ManifestDoc, message: string): void => {
    problems.push(`${labelOf(d)}: ${message}`);
  };
  const deployments = objectsOf(docs, 'apps/v1/Deployment');
  const services = objectsOf(docs, 'v1/Service');
  const configMaps = objectsOf(docs, 'v1/ConfigMap');
  const budgets = objectsOf(docs, 'policy/v1/PodDisruptionBudget');
  const pods: Pod[] = deployments.map(({ doc, o }) => ({
    owner: nameOf(doc.object),
    doc,
    labels: o.spec?.template.metadata?.labels,
    annotations: o.spec?.template.metadata?.annotations,
    spec: o.spec?.template.spec ?? { containers: [] },
  }));

  // Names, namespaces, duplicates.
  const seen = new Set<string>();
  for (const d of docs) {
    const name = nameOf(d.object);
    const k = KINDS.get(kindKey(d.object));
    if (!DNS_LABEL.test(name) || name.length > 63) add(d, `metadata.name "${name}" is not a DNS-1123 label`);
    const ns = isRecord(d.object.metadata) ? str(d.object.metadata.namespace) : '';
    if (k?.namespaced && namespace !== undefined && ns !== namespace) add(d, `metadata.namespace "${ns}" differs from the kustomization's "${namespace}"`);
    const id = `${kindKey(d.object)} ${ns}/${name}`;
    if (seen.has(id)) add(d, `duplicate object ${id}`);
    seen.add(id);
  }
  if (namespace !== undefined && !docs.some((d) => kindKey(d.object) === 'v1/Namespace' && nameOf(d.object) === namespace)) {
    problems.push(`no Namespace manifest for "${namespace}"`);
  }

  // Workloads: selectors, containers, probes, env, security, resources.
  for (const { doc, o } of deployments) {
    if (!matches(o.spec?.selector.matchLabels, o.spec?.template.metadata?.labels)) add(doc, 'spec.selector.matchLabels does not match spec.template.metadata.labels');
  }
  for (const pod of pods) {
    const { doc, spec } = pod;
    const podSc = spec.securityContext;
    if (spec.hostNetwork === true || spec.hostPID === true || spec.hostIPC === true) add(doc, 'host namespaces are not allowed (Pod Security restricted)');
    if (spec.enableServiceLinks !== false) add(doc, 'enableServiceLinks must be false: Service links would set e.g. BALANCER_PORT=tcp://... in the pods');
    if (spec.automountServiceAccountToken !== false) add(doc, 'automountServiceAccountToken must be false: no pod here talks to the API');
    const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
    for (const v of spec.volumes ?? []) {
      const type = Object.keys(v).find((key) => key !== 'name');
      if (type === undefined || !RESTRICTED_VOLUMES.has(type)) add(doc, `volume ${v.name}: type ${type ?? 'none'} is not allowed (Pod Security restricted)`);
    }
    const names = new Set<string>();
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
      const where = `container ${c.name}`;
      if (names.has(c.name)) add(doc, `${where}: duplicate container name`);
      names.add(c.name);
      const ports = portsOf(c);
      for (const p of c.ports ?? []) if (p.name !== undefined && (p.name.length > 15 || !DNS_LABEL.test(p.name))) add(doc, `${where}: port name "${p.name}" is not an IANA service name (at most 15 characters)`);
      const probes: [string, IProbe | undefined][] = [['readinessProbe', c.readinessProbe], ['livenessProbe', c.livenessProbe], ['startupProbe', c.startupProbe]];
      for (const [probeName, probe] of probes) {
        const port = probe?.httpGet?.port ?? probe?.tcpSocket?.port;
        if (typeof port === 'string' && !ports.byName.has(port)) add(doc, `${where}: ${probeName} uses port "${port}", which the container does not name`);
        if (typeof port === 'number' && !ports.numbers.has(port)) add(doc, `${where}: ${probeName} uses port ${port}, which the container does not declare`);
      }
      if (!c.readinessProbe || !c.livenessProbe) add(doc, `${where}: needs a readinessProbe and a livenessProbe`);
      // Kubernetes expands $(VAR) only for variables defined earlier in the list; others stay literal.
      const defined = new Set<string>();
      for (const e of c.env ?? []) {
        for (const ref of (e.value ?? '').matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
          if (!defined.has(ref[1] ?? '')) add(doc, `${where}: env ${e.name} uses $(${ref[1] ?? ''}), which is not defined before it`);
        }
        defined.add(e.name);
        const ref = e.valueFrom?.configMapKeyRef;
        if (ref) {
          const cm = configMaps.find((m) => nameOf(m.doc.object) === ref.name);
          if (!cm) add(doc, `${where}: env ${e.name} reads ConfigMap "${ref.name ?? ''}", which is not in deploy/k8s`);
          else if (cm.o.data?.[ref.key] === undefined && ref.optional !== true) add(doc, `${where}: env ${e.name} reads key "${ref.key}", which ConfigMap ${ref.name ?? ''} does not have`);
        }
      }
      for (const m of c.volumeMounts ?? []) if (!volumes.has(m.name)) add(doc, `${where}: volumeMount ${m.name} has no volume`);
      // Pod Security "restricted", plus a read-only root filesystem.
      const sc = c.securityContext;
      if ((sc?.runAsNonRoot ?? podSc?.runAsNonRoot) !== true) add(doc, `${where}: runAsNonRoot must be true`);
      if ((sc?.runAsUser ?? podSc?.runAsUser) === 0) add(doc, `${where}: runAsUser 0 is root`);
      if ((sc?.runAsUser ?? podSc?.runAsUser) === undefined) add(doc, `${where}: runAsUser must be numeric (the kubelet cannot check runAsNonRoot for a named image user)`);
      if (sc?.privileged === true) add(doc, `${where}: privileged`);
      if (sc?.allowPrivilegeEscalation !== false) add(doc, `${where}: allowPrivilegeEscalation must be false`);
      if (!(sc?.capabilities?.drop ?? []).includes('ALL')) add(doc, `${where}: capabilities.drop must include ALL`);
      for (const cap of sc?.capabilities?.add ?? []) if (cap !== 'NET_BIND_SERVICE') add(doc, `${where}: capability ${cap} may not be added`);
      const seccomp = (sc?.seccompProfile ?? podSc?.seccompProfile)?.type;
      if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') add(doc, `${where}: seccompProfile must be RuntimeDefault or Localhost`);
      if (sc?.readOnlyRootFilesystem !== true) add(doc, `${where}: readOnlyRootFilesystem must be true`);
      for (const resource of ['cpu', 'memory']) {
        const request = parseQuantity(c.resources?.requests?.[resource]);
        const limit = parseQuantity(c.resources?.limits?.[resource]);
        if (request === undefined || limit === undefined) add(doc, `${where}: needs resources.requests and resources.limits for ${resource}`);
        else if (request > limit) add(doc, `${where}: ${resource} request ${String(c.resources?.requests?.[resource])} exceeds its limit ${String(c.resources?.limits?.[resource])}`);
      }
    }
    const scrape = pod.annotations?.['prometheus.io/port'];
    if (scrape !== undefined && !spec.containers.some((c) => portsOf(c).numbers.has(Number(scrape)))) add(doc, `prometheus.io/port ${scrape} is not a container port`);
  }

  // Services: selectors and target ports.
  for (const { doc, o } of services) {
    const selected = pods.filter((p) => matches(o.spec?.selector, p.labels));
    if (selected.length === 0) {
      add(doc, `spec.selector ${JSON.stringify(o.spec?.selector ?? {})} selects no Deployment's pods`);
      continue;
    }
    for (const port of o.spec?.ports ?? []) {
      const target = port.targetPort ?? port.port;
      for (const p of selected) {
        const has = p.spec.containers.some((c) => (typeof target === 'string' ? portsOf(c).byName.has(target) : portsOf(c).numbers.has(target)));
        if (!has) add(doc, `port ${port.name ?? port.port}: targetPort ${String(target)} is not a port of ${p.owner}'s containers`);
      }
    }
  }

  // Budgets: must select pods, and must leave a drain possible.
  for (const { doc, o } of budgets) {
    const selected = deployments.filter((d) => matches(o.spec?.selector?.matchLabels, d.o.spec?.template.metadata?.labels));
    if (selected.length === 0) add(doc, 'spec.selector selects no Deployment\'s pods');
    for (const d of selected) {
      const replicas = d.o.spec?.replicas ?? 1;
      if (typeof o.spec?.minAvailable === 'number' && o.spec.minAvailable >= replicas) add(doc, `minAvailable ${o.spec.minAvailable} >= ${replicas} replicas of ${nameOf(d.doc.object)}: no pod could ever be evicted`);
      if (o.spec?.maxUnavailable === 0) add(doc, 'maxUnavailable 0: no pod could ever be evicted');
    }
  }
  return problems;
}

/** What this cluster needs to exist at all, checked on the real manifests. */
export function requirementProblems(docs: readonly ManifestDoc[]): string[] {
  const problems: string[] = [];
  const find = <K extends keyof Typed>(key: K, name: string): Typed[K] | undefined => objectsOf(docs, key).find((x) => nameOf(x.doc.object) === name)?.o;
  const deployment = (name: string): IDeployment | undefined => {
    const d = find('apps/v1/Deployment', name);
    if (!d) problems.push(`missing Deployment ${name}`);
    return d;
  };
  const envOf = (d: IDeployment | undefined): Map<string, string> =>
    new Map((d?.spec?.template.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? `<from ${e.valueFrom ? Object.keys(e.valueFrom).join() : '?'}>`]));
  const backend = deployment('backend');
  const balancer = deployment('balancer');
  const frontend = deployment('frontend');

  for (const [d, path] of [[backend, '/healthz'], [balancer, undefined]] as const) {
    const c = d?.spec?.template.spec?.containers[0];
    if (path !== undefined && (c?.readinessProbe?.httpGet?.path !== path || c.livenessProbe?.httpGet?.path !== path)) problems.push(`backend: readiness and liveness probes must be HTTP GET ${path}`);
    const a = d?.spec?.template.metadata?.annotations;
    if (d && (a?.['prometheus.io/scrape'] !== 'true' || a['prometheus.io/port'] === undefined)) problems.push(`${d.metadata?.name ?? '?'}: pods need prometheus.io/scrape and prometheus.io/port annotations`);
  }

  // The balancer discovers backends through a headless Service that selects the backend pods.
  const lbEnv = envOf(balancer);
  const discovery = lbEnv.get('LB_DISCOVERY_DNS') ?? '';
  const headlessName = discovery.split('.')[0] ?? '';
  const headless = find('v1/Service', headlessName);
  if (!headless) problems.push(`LB_DISCOVERY_DNS "${discovery}" names no Service in deploy/k8s`);
  else {
    if (headless.spec?.clusterIP !== 'None') problems.push(`Service ${headlessName} must be headless (clusterIP: None) so that DNS returns every pod`);
    if (!matches(headless.spec?.selector, backend?.spec?.template.metadata?.labels)) problems.push(`Service ${headlessName} does not select the backend pods`);
    if (!/^[a-z0-9-]+\.\$\(POD_NAMESPACE\)\.svc\.cluster\.local$/.test(discovery)) problems.push(`LB_DISCOVERY_DNS "${discovery}" should be <service>.$(POD_NAMESPACE).svc.cluster.local`);
  }
  // The balancers find each other through a headless Service over their own pods, with the peer
  // port open for UDP; sharing counts needs two of them at least.
  const peersDns = lbEnv.get('LB_PEERS_DNS') ?? '';
  const peersName = peersDns.split('.')[0] ?? '';
  const peersService = find('v1/Service', peersName);
  if (!peersService) problems.push(`LB_PEERS_DNS "${peersDns}" names no Service in deploy/k8s`);
  else {
    if (peersService.spec?.clusterIP !== 'None') problems.push(`Service ${peersName} must be headless (clusterIP: None) so that DNS returns every balancer pod`);
    if (!matches(peersService.spec?.selector, balancer?.spec?.template.metadata?.labels)) problems.push(`Service ${peersName} does not select the balancer pods`);
    if (!/^[a-z0-9-]+\.\$\(POD_NAMESPACE\)\.svc\.cluster\.local$/.test(peersDns)) problems.push(`LB_PEERS_DNS "${peersDns}" should be <service>.$(POD_NAMESPACE).svc.cluster.local`);
    const peersPort = Number(lbEnv.get('LB_PEERS_PORT') ?? 9001);
    const container = balancer?.spec?.template.spec?.containers[0];
    if (!(container?.ports ?? []).some((p) => p.containerPort === peersPort && p.protocol === 'UDP')) problems.push(`balancer: container port ${peersPort}/UDP (the peer port) is not declared`);
    if (!(peersService.spec?.ports ?? []).some((p) => p.port === peersPort && p.protocol === 'UDP')) problems.push(`Service ${peersName} has no UDP port ${peersPort} for the peer reports`);
  }
  if ((balancer?.spec?.replicas ?? 1) < 2) problems.push('balancer: at least 2 replicas (active-active, sharing their counts)');
  // nginx reaches the balancer's Service on both its ports.
  const feEnv = envOf(frontend);
  const balancerService = find('v1/Service', (feEnv.get('BALANCER_HOST') ?? '').split('.')[0] ?? '');
  if (!balancerService) problems.push(`frontend: BALANCER_HOST "${feEnv.get('BALANCER_HOST') ?? ''}" names no Service`);
  for (const key of ['BALANCER_PORT', 'BALANCER_ADMIN_PORT']) {
    if (balancerService && !(balancerService.spec?.ports ?? []).some((p) => String(p.port) === feEnv.get(key))) problems.push(`frontend: ${key} ${feEnv.get(key) ?? '?'} is not a port of Service balancer`);
  }
  if (!find('v1/Service', 'frontend')) problems.push('missing Service frontend (the UI)');
  const budget = objectsOf(docs, 'policy/v1/PodDisruptionBudget').find((b) => matches(b.o.spec?.selector?.matchLabels, backend?.spec?.template.metadata?.labels));
  if (!budget) problems.push('missing a PodDisruptionBudget for the backend pods');
  return problems;
}

/** kustomization.yaml: lists exactly the manifest files, sets a namespace, names the images used. */
export function kustomizationProblems(kustomization: unknown, files: readonly string[], docs: readonly ManifestDoc[]): { namespace: string | undefined; problems: string[] } {
  if (!isRecord(kustomization)) return { namespace: undefined, problems: ['deploy/k8s/kustomization.yaml is missing or not a mapping'] };
  const problems: string[] = [];
  if (kustomization.apiVersion !== 'kustomize.config.k8s.io/v1beta1' || kustomization.kind !== 'Kustomization') problems.push('kustomization.yaml: apiVersion/kind must be kustomize.config.k8s.io/v1beta1 Kustomization');
  const resources = Array.isArray(kustomization.resources) ? kustomization.resources.map(String) : [];
  const listed = [...resources].sort().join(', ');
  if (listed !== [...files].sort().join(', ')) problems.push(`kustomization.yaml resources [${listed}] must be exactly the manifest files [${files.join(', ')}]`);
  const images = new Set((Array.isArray(kustomization.images) ? kustomization.images : []).filter(isRecord).map((i) => str(i.name)));
  for (const { doc: d, o } of objectsOf(docs, 'apps/v1/Deployment')) {
    for (const c of o.spec?.template.spec?.containers ?? []) {
      const image = (c.image ?? '').replace(/[:@].*$/, '');
      if (!images.has(image)) problems.push(`${labelOf(d)}: image ${c.image ?? '?'} is not in kustomization.yaml images (so it cannot be pointed at a registry)`);
    }
  }
  const namespace = typeof kustomization.namespace === 'string' ? kustomization.namespace : undefined;
  if (namespace === undefined) problems.push('kustomization.yaml must set namespace');
  return { namespace, problems };
}

/** Every layer on a set of documents: schema and unknown fields first, the rest on schema-valid ones. */
export function validateDocs(docs: readonly ManifestDoc[], namespace: string | undefined): string[] {
  const schema = schemaProblems(docs);
  const fields = unknownFieldProblems(docs);
  const valid = docs.filter((d) => !schema.some((p) => p.startsWith(`${labelOf(d)}:`)));
  return [...schema, ...fields, ...consistencyProblems(valid, namespace)];
}
