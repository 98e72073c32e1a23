"""The dashboard on a 10,000-trial study (issue 22): how long the first page
takes, each plot, the event stream's first message (every trial, which the
page's table is built from), and a live update — from `gradus tell`
returning to the stream delivering the finished trial.

The study is filled by `gradus run` (random sampler, six parameters, a
shell command per trial), then served by `gradus dashboard` on a free
port. Standard library only.

  cargo build --release -p gradus-cli
  python3 bench/dashboard.py [--trials 10000] [--keep DIR]
"""
import argparse, http.client, json, os, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRADUS = os.path.join(ROOT, "target", "release", "gradus")
SPACE = json.dumps({
    "lr": {"type": "float", "low": 1e-5, "high": 0.1, "log": True},
    "width": {"type": "int", "low": 16, "high": 512, "log": True},
    "depth": {"type": "int", "low": 1, "high": 4},
    "dropout": {"type": "float", "low": 0, "high": 0.5},
    "optimizer": {"type": "categorical", "choices": ["sgd", "adam", "rmsprop"]},
    "schedule": {"type": "categorical", "choices": ["constant", "cosine"]},
})


def run(*args, **kw):
    out = subprocess.run([GRADUS, *args], capture_output=True, text=True, **kw)
    if out.returncode != 0:
        sys.exit(f"gradus {' '.join(args[:3])} failed: {out.stderr}")
    return out.stdout


def timed_get(addr, path):
    start = time.perf_counter()
    c = http.client.HTTPConnection(*addr, timeout=60)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    return r.status, len(body), time.perf_counter() - start


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--trials", type=int, default=10000)
    p.add_argument("--keep", metavar="DIR", help="make (or reuse) the study's gradus.db in DIR")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(a.keep or tmp)
        if not os.path.exists("gradus.db"):
            run("study", "create", "--study", "big", "--direction", "minimize", "--space", SPACE, "--sampler", "random")
            start = time.perf_counter()
            run("run", "--study", "big", "--trials", str(a.trials), "--jobs", "2", "--schedule", "greedy", "--",
                "sh", "-c", "echo {lr}")
            print(f"filled {a.trials} trials in {time.perf_counter() - start:.0f} s")
        server = subprocess.Popen([GRADUS, "dashboard", "--bind", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
        try:
            line = server.stdout.readline()
            host, port = line.split("http://")[1].split("/")[0].split(":")
            addr = (host, int(port))
            rows = []
            for path in ["/", "/study/big"] + [f"/study/big/plot/{k}" for k in
                                               ["history", "intermediate", "edf", "timeline", "slice", "parallel", "importance"]]:
                times = []
                for _ in range(3):
                    status, size, t = timed_get(addr, path)
                    assert status == 200, (path, status)
                    times.append(t)
                rows.append((path, size, statistics.median(times)))
            # The stream's first message: every trial.
            s = socket.create_connection(addr)
            start = time.perf_counter()
            s.sendall(f"GET /study/big/events HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            f = s.makefile("rb")
            first = None
            while first is None:
                line = f.readline().decode()
                if line.startswith("data: "):
                    first = json.loads(line[6:])
            rows.append(("/study/big/events: first message (every trial)", len(first["trials"]),
                         time.perf_counter() - start))
            # Live updates: a trial told complete, then seen on the stream.
            delays = []
            for _ in range(7):
                asked = json.loads(run("ask", "--study", "big"))
                number = asked["trial"]
                run("tell", "--study", "big", "--trial", str(number), "--value", "0.5")
                told = time.perf_counter()
                seen = False
                while not seen:
                    line = f.readline().decode()
                    if line.startswith("data: "):
                        seen = any(t["number"] == number and t["state"] == "complete"
                                   for t in json.loads(line[6:])["trials"])
                delays.append(time.perf_counter() - told)
            s.close()
        finally:
            server.kill()
        print(f"\n{a.trials} trials; medians of 3 requests (7 live updates)")
        print("| request | bytes (trials) | seconds |")
        print("|---|---|---|")
        for path, size, t in rows:
            print(f"| `{path}` | {size} | {t:.3f} |")
        print(f"| live update: `gradus tell` returns → the stream delivers the trial | | "
              f"median {statistics.median(delays):.3f}, max {max(delays):.3f} |")


if __name__ == "__main__":
    main()
