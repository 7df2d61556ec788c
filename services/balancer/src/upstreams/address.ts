/** One upstream address as configured or discovered. */
export interface UpstreamAddress {
  readonly host: string;
  readonly port: number;
  readonly weight: number;
}
