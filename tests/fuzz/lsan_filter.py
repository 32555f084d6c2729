"""Reads LeakSanitizer logs; fails (exit 1) on any leak whose allocation stack passes through
fastbp's extension module. Leaks entirely inside the interpreter are reported as a count."""
import re
import sys

MARKERS = ("_core.cpython", "fastbp::", "/src/cpp/")


def main(paths):
    ours, others = [], 0
    for path in paths:
        try:
            text = open(path, errors="replace").read()
        except FileNotFoundError:
            continue
        for block in re.split(r"\n(?=(?:Direct|Indirect) leak of )", text):
            if not re.match(r"(?:Direct|Indirect) leak of ", block):
                continue
            if any(m in block for m in MARKERS):
                ours.append(block.strip())
            else:
                others += 1
    print(f"lsan_filter: {len(ours)} leak(s) through fastbp, {others} inside the interpreter "
          "(ignored)")
    for b in ours[:10]:
        print(b[:3000], file=sys.stderr)
    return 1 if ours else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
