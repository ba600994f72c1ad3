/**
 * What bench/peer.ts needs from each system it compares (Servman, Colyseus): rooms with clients
 * in them, its server processes by group (for CPU and memory), idle rooms, ways to create and
 * join a room, and a stop that checks nothing it started is left.
 */
import type { BenchContext } from "../lib/bench-runner.js";
import type { CpuGroups } from "../lib/cpu-time.js";
import type { RoomClient } from "./room-clients.js";

/** One way to create a room and join it, timed at the client (Servman warm, cold; Colyseus `create`). */
export interface CreateJoinSeries {
  /** Its key in the results (`servmanWarm`, `colyseus`, ...). */
  key: string;
  /** What it does, for the output. */
  label: string;
  /** Waits, untimed, until the machine is as the next create+join expects it (a full warm pool, quiet). */
  prepare(): Promise<void>;
  /** Creates and joins one room; resolves with the ms it took. The room is then ended, untimed. */
  run(): Promise<number>;
}

/** One system under test, running. */
export interface PeerSystem {
  /** Its key in the results (`servman`, `colyseus`, ...). */
  key: string;
  /** What it is, for the output. */
  label: string;
  /** Opens `clients` connections, client c in new room c mod `rooms`, each joined. */
  openRooms(rooms: number, clients: number): Promise<RoomClient[]>;
  /** Its server processes now, by group (their CPU is what a round trip or a delivery costs it). */
  groups(): CpuGroups;
  /** The processes whose memory grows with rooms. */
  roomPids(): number[];
  /** Creates `count` rooms with no client in them, which stay up. */
  createIdleRooms(count: number): Promise<void>;
  /** Ends the rooms `createIdleRooms` made. */
  removeIdleRooms(): Promise<void>;
  /** Called before memory is read (a garbage collection where the system allows one). */
  beforeMemory(): Promise<void>;
  /** Its ways to create and join a room. */
  createJoins: CreateJoinSeries[];
  /** Closes every client, stops every process, records the checks. */
  stop(ctx: BenchContext): Promise<void>;
}
