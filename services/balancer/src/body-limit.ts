/**
 * The balancer's one reader of a whole request body up to a limit: what the admin writes and the
 * lab's runs (write-guard.ts's parseBody) read their JSON from. The caller names the error for a
 * body over the limit, so each keeps its own code and status.
 *
 * Not to be confused with data-path/request-body.ts's lazyBody: that one buffers nothing and has
 * no limit; it streams a proxied request's body to one upstream attempt, only once the upstream
 * connection exists, so a failed connect leaves the body unread for a retry elsewhere.
 */
import type { IncomingMessage } from 'node:http';

/**
 * Reads `req` to its end and resolves with its bytes; never buffers more than `limit` bytes.
 * Over the limit (declared by Content-Length or found while reading) it rejects with `tooLarge()`
 * and discards the rest of the body rather than destroying the request, so the answer can still go
 * out on the client's socket. A stream error rejects with that error.
 */
export function readBodyWithLimit(req: IncomingMessage, limit: number, tooLarge: () => Error): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > limit) {
    req.resume(); // discard it; the answer says why
    return Promise.reject(tooLarge());
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const detach = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        detach();
        req.resume(); // keeps flowing into nothing until the client stops
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      detach();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error): void => {
      detach();
      reject(err);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
