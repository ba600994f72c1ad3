/**
 * The floor's instance process: Node IPC with no Servman code. Whatever arrives goes straight
 * back. Like a Servman service, it exits when its parent goes away, so it is never orphaned.
 */
process.on("message", (message: unknown) => {
  process.send!(message as string);
});
process.once("disconnect", () => process.exit(0));
// First message, so a parent can wait for "the child is running" the way Servman waits for ready.
process.send!("ready");
