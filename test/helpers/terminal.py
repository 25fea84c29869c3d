# Runs a command on a real pseudo-terminal and answers its prompts: argv is the command; the
# environment variable PTY_ANSWERS holds the replies, one per line, each sent after the next
# "PROMPT_MARK" text appears. Prints the whole terminal transcript as JSON with the exit status.
import json, os, pty, select, sys, time

answers = os.environ.get("PTY_ANSWERS", "").split("\n") if os.environ.get("PTY_ANSWERS") else []
mark = os.environ.get("PTY_PROMPT_MARK", ": ").encode()
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
transcript = b""
seen = 0
deadline = time.time() + 30
while time.time() < deadline:
    r, _, _ = select.select([fd], [], [], 0.2)
    if r:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        transcript += data
    if answers and transcript.count(mark) > seen:
        seen += 1
        time.sleep(0.05)
        os.write(fd, answers.pop(0).encode() + b"\r")
_, status = os.waitpid(pid, 0)
print(json.dumps({"status": os.waitstatus_to_exitcode(status), "transcript": transcript.decode("utf8", "replace")}))
