// A tiny fetch wrapper for the API tests: real HTTP, bounded by a timeout.
export interface ApiResponse {
  status: number;
  headers: Headers;
  json: any;
  text: string;
}

export interface CallOptions {
  key?: string | null;
  body?: unknown;
  /** Sent as is (for malformed JSON). */
  raw?: string;
  headers?: Record<string, string>;
}

export function apiClient(baseUrl: string) {
  return async function call(method: string, path: string, o: CallOptions = {}): Promise<ApiResponse> {
    const headers: Record<string, string> = { ...(o.headers ?? {}) };
    if (o.key) headers.authorization = `Bearer ${o.key}`;
    const payload = o.raw ?? (o.body === undefined ? undefined : JSON.stringify(o.body));
    if (payload !== undefined) headers['content-type'] ??= 'application/json';
    const res = await fetch(`${baseUrl}/api/v1${path}`, { method, headers, body: payload, signal: AbortSignal.timeout(15_000) });
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, json, text };
  };
}

export type Call = ReturnType<typeof apiClient>;
