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
    instance = None
    args = {}
    # readline() returns "" at EOF: the node is gone, so we end too (no orphans).
    for line in iter(sys.stdin.readline, ""):
        line = line.strip()
        if not line:
            continue
        message = json.loads(line)
        kind = message.get("type")
        if kind == "start":
            instance, args = message["instance"], message.get("args") or {}
            log(f"echo {instance} starting with args {args}")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
