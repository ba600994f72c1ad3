/**
 * A client's per-instance handles (`client.instance(id)`): one per instance until the client
 * leaves it or hears it `closed`, when its handlers are dropped.
 */
import { ServmanError } from "../errors.js";
import { InstanceHandle, type InstanceHandleHost } from "./instance-handle.js";

export class InstanceHandles {
  private readonly handles = new Map<string, InstanceHandle>();
  private readonly host: InstanceHandleHost;

  /** `requests`: the client's requests, which every handle calls with its id. */
  constructor(requests: Omit<InstanceHandleHost, "reattach">) {
    this.host = {
      ...requests,
      reattach: (handle) => {
        const current = this.handles.get(handle.id);
        if (current === handle) return;
        if (current && current.actions().length > 0) throw new ServmanError("bad_request", `instance ${handle.id} has a newer handle; use client.instance(id)`);
        this.handles.set(handle.id, handle);
      },
    };
  }

  /** The handle of `id`, created on first use. */
  get(id: string): InstanceHandle {
    let handle = this.handles.get(id);
    if (!handle) this.handles.set(id, (handle = new InstanceHandle(id, this.host)));
    return handle;
  }

  /** The client no longer hears `instance`: its handle's handlers are dropped. */
  drop(instance: string): void {
    this.handles.get(instance)?.clear();
    this.handles.delete(instance);
  }

  /** Calls `instance`'s handler of `action`, if any; false when there is none. */
  dispatch(instance: string, action: string, data: unknown, channel: string | undefined, onError: (err: unknown) => void): boolean {
    return this.handles.get(instance)?.dispatch(action, data, channel, onError) ?? false;
  }
}
