// Server-sent-events framing for the decision stream (text/event-stream). Data lines never hold
// a newline: a compact JWS and our JSON are single-line by construction, and checked here.

export function sseFrame(event: string, data: string, id?: number): string {
  if (/[\r\n]/.test(data) || /[\r\n]/.test(event)) throw new TypeError('SSE data must be one line');
  return `${id === undefined ? '' : `id: ${id}\n`}event: ${event}\ndata: ${data}\n\n`;
}

export function sseComment(text: string): string {
  return `: ${text.replace(/[\r\n]/g, ' ')}\n\n`;
}

/** The resume point: `?from=REV`, else the `Last-Event-ID` header, else none (a snapshot). */
export function resumeRevision(query: string | undefined, lastEventId: string | undefined): number | null {
  const pick = query ?? lastEventId;
  if (pick === undefined || pick === '') return null;
  if (!/^\d{1,15}$/.test(pick)) return NaN;
  return Number(pick);
}
