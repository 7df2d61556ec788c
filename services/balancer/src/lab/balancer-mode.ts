/**
 * The lab's "balancers" dimension (issue 25): the same seeded traffic through one balancer, through
 * two whose counts are isolated, or through two that share them. In the two-balancer modes half the
 * requests (every other one of the schedule) go to a live peer's data port, which its reports name;
 * for "two-isolated" this balancer stops sharing for the run (PUT /api/peers does the same), and
 * the run starts only once the peer has dropped it, so both pick on their own counts alone.
 */
import type { Peers } from '../peers/peers.js';
import type { PolicyName } from '../picker/policy.js';

export const BALANCER_MODES = ['one', 'two-isolated', 'two-sharing'] as const;
export type BalancerMode = (typeof BALANCER_MODES)[number];

/** The peer a two-balancer run sends half its traffic to. */
export interface LabPeer {
  readonly id: string;
  readonly address: string;
  readonly dataUrl: string;
  readonly adminUrl: string;
}

/** Why a two-balancer run cannot start (an admin refusal's code and message). */
export interface PeerRefusal {
  readonly code: 'LB_LAB_NO_PEER' | 'LB_LAB_PEER_POLICY';
  readonly message: string;
}

/** Admin calls to the peer: short, the peer is on the same network. */
const PEER_CALL_MS = 2000;
const POLL_MS = 50;

const getJson = async (url: string): Promise<unknown> => {
  const res = await fetch(url, { signal: AbortSignal.timeout(PEER_CALL_MS), headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return res.json();
};

/**
 * The first live peer whose reports name its ports, when its policy is every one the run uses
 * (the lab switches only this balancer's policy: a peer picking otherwise would mix two policies
 * in one row); else why not.
 */
export async function findLabPeer(peers: Peers, policies: readonly PolicyName[]): Promise<LabPeer | PeerRefusal> {
  const live = peers.view().filter((p) => p.state === 'live' && p.id !== null && p.dataUrl !== null && p.adminUrl !== null);
  const peer = live[0];
  if (peer?.id == null || peer.dataUrl === null || peer.adminUrl === null) {
    const known = peers.view().map((p) => `${p.address} (${p.state})`).join(', ');
    return {
      code: 'LB_LAB_NO_PEER',
      message: `a two-balancer run needs a live peer that reports its data port: ${peers.enabled ? `peers known: ${known || 'none'}` : 'this balancer has no --peer / --peers-dns'}`,
    };
  }
  let peerPolicy: string;
  try {
    peerPolicy = String((await getJson(`${peer.adminUrl}/api/policy`) as { policy?: unknown }).policy);
  } catch (err) {
    return { code: 'LB_LAB_NO_PEER', message: `the peer ${peer.address} did not answer on its admin port ${peer.adminUrl}: ${err instanceof Error ? err.message : String(err)}` };
  }
  const other = policies.find((p) => p !== peerPolicy);
  if (other !== undefined) {
    return {
      code: 'LB_LAB_PEER_POLICY',
      message: `the peer ${peer.address} picks with ${peerPolicy}, this run with ${other}: a two-balancer run measures one policy, the one both use (PUT /api/policy on the peer, or run with its policy)`,
    };
  }
  return { id: peer.id, address: peer.address, dataUrl: peer.dataUrl, adminUrl: peer.adminUrl };
}

export const isPeerRefusal = (x: LabPeer | PeerRefusal): x is PeerRefusal => 'code' in x;

/**
 * Switches this balancer's sharing to `on` and waits until the peer's view of it agrees: counted
 * (live) when on, dropped when off. Throws after `deadlineMs`.
 */
export async function setSharingSeenBy(peers: Peers, peer: LabPeer, on: boolean, deadlineMs: number, cancelled: () => boolean): Promise<void> {
  peers.setSharing(on);
  const deadline = performance.now() + deadlineMs;
  let seen: string;
  for (;;) {
    try {
      const view = (await getJson(`${peer.adminUrl}/api/peers`)) as { peers?: { id?: unknown; state?: unknown }[] };
      const state = view.peers?.find((p) => p.id === peers.instanceId)?.state;
      seen = typeof state === 'string' ? state : 'absent';
      if (on ? seen === 'live' : seen !== 'live') return;
    } catch (err) {
      seen = err instanceof Error ? err.message : String(err);
    }
    if (cancelled()) return;
    if (performance.now() > deadline) throw new Error(`the peer ${peer.address} still sees this balancer as ${seen} after ${deadlineMs} ms (wanted ${on ? 'live' : 'dropped'})`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
