#!/usr/bin/env python3
"""A Servman `command` task in Python, standard library only.

It speaks the task protocol (docs/task-protocol.md): one JSON object per line, the node's messages
on stdin, ours on stdout; stderr is the instance's log. It echoes every message back to its sender
as `echo`, answers `shout` with a broadcast to everyone joined, and ends itself on `quit`.
"""
import json
import sys


def emit(message):
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def log(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def main():
    state = {"instance": None, "args": {}}
    # readline() returns "" at EOF: the node is gone, so we end too (no orphans).
    for line in iter(sys.stdin.readline, ""):
        line = line.strip()
        if not line:
            continue
        try:
            done = handle(json.loads(line), state)
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as err:
            # One bad message (too deeply nested for Python's recursive JSON code, a missing
            # field) must not end the instance: log it and go on with the next line.
            log(f"message skipped: {type(err).__name__}: {str(err)[:200]}")
            continue
        if done is not None:
            return done
    return 0


def handle(message, state):
    """Handles one message from the node; returns an exit code when the process should end."""
    if not isinstance(message, dict):
        raise TypeError("message is not a JSON object")
    kind = message.get("type")
    args = state["args"]
    if kind == "start":
        state["instance"], state["args"] = message["instance"], message.get("args") or {}
        log(f"echo {state['instance']} starting with args {state['args']}")
        emit({"type": "ready"})
    elif kind == "join":
        if message.get("data") == "let me down":
            emit({"type": "reject", "client": message["client"], "reason": "as you wish"})
        else:
            emit({"type": "accept", "client": message["client"]})
    elif kind == "message":
        client, action, data = message["client"], message["action"], message.get("data")
        if action == "shout":
            emit({"type": "send", "action": "shouted", "data": data})
        elif action == "quit":
            emit({"type": "stop"})
            return 0
        elif action == "crash":
            log("crashing on request")
            return 3
        else:
            reply = {"type": "send", "to": [client], "action": "echo", "data": {"action": action, "data": data, "args": args}}
            if "channel" in message:
                reply["channel"] = message["channel"]
            emit(reply)
    elif kind == "leave":
        log(f"{message['client']} left ({message['reason']})")
    elif kind == "shutdown":
        log("shutting down")
        return 0
    return None


if __name__ == "__main__":
    sys.exit(main())
