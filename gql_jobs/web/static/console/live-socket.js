// A small graphql-transport-ws client: one WebSocket, many subscriptions, reconnects with backoff
// and re-subscribes. The protocol: https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md
const FATAL = new Set([4400, 4401, 4403, 4406, 4409, 4429, 1002, 1008]);

export class LiveSocket {
  // onState(state, detail): "connecting", "live", "reconnecting" or "refused".
  constructor(url, connectionParams, onState) {
    Object.assign(this, { url, connectionParams, onState });
    this.subscriptions = new Map();
    this.nextId = 1;
    this.attempt = 0;
    this.stopped = false;
    this.connect();
  }

  connect() {
    this.acked = false;
    this.onState(this.attempt ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url, "graphql-transport-ws");
    this.ws = ws;
    ws.onopen = () => this.send({ type: "connection_init", payload: this.connectionParams });
    ws.onmessage = (event) => this.receive(JSON.parse(event.data));
    ws.onclose = (event) => {
      if (this.stopped || ws !== this.ws) return;
      if (FATAL.has(event.code)) {
        this.onState("refused", `${event.code} ${event.reason}`.trim());
        return;
      }
      const delay = Math.min(10_000, 500 * 2 ** this.attempt++);
      this.onState("reconnecting");
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  receive(message) {
    if (message.type === "connection_ack") {
      this.acked = true;
      this.attempt = 0;
      for (const [id, sub] of this.subscriptions) this.start(id, sub);
      this.onState("live");
    } else if (message.type === "ping") {
      this.send({ type: "pong" });
    } else {
      const sub = this.subscriptions.get(message.id);
      if (!sub) return;
      if (message.type === "next") sub.next(message.payload);
      if (message.type === "error" || message.type === "complete") this.subscriptions.delete(message.id);
      if (message.type === "error") sub.error?.(message.payload);
      if (message.type === "complete") sub.complete?.();
    }
  }

  send(message) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  start(id, { query, variables }) {
    this.send({ id, type: "subscribe", payload: { query, variables } });
  }

  // handlers: { next(payload), error(errors), complete() }. Returns a function that unsubscribes.
  subscribe(query, variables, handlers) {
    const id = String(this.nextId++);
    const sub = { query, variables, ...handlers };
    this.subscriptions.set(id, sub);
    if (this.acked) this.start(id, sub);
    return () => {
      if (this.subscriptions.delete(id) && this.acked) this.send({ id, type: "complete" });
    };
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ws.close(1000, "bye");
  }
}
