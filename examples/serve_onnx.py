"""Train a digits classifier with fastbp, export it to ONNX, and serve it with onnxruntime
alone: the server is a separate Python process that never imports fastbp.

    python examples/serve_onnx.py [--epochs 30] [--out DIR] [--fast]

The server (``serve_onnx.py --serve model.onnx``) reads requests as JSON lines on stdin
(``{"pixels": [[64 floats], ...]}``) and answers each with a JSON line
(``{"labels": [...], "probabilities": [[10 floats], ...]}``). It needs only NumPy and
onnxruntime (``pip install onnxruntime``); ``import fastbp`` is blocked inside it. The
trainer sends the held-out digits in batches and checks that the served labels equal
``model.predict``'s and the probabilities agree to float32 rounding.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile


# ------------------------------------------------------------------------------ the server
def serve(model_path: str) -> int:
    """Answer JSON-line requests on stdin with onnxruntime (no fastbp)."""
    sys.modules["fastbp"] = None  # type: ignore[assignment]  # importing fastbp now fails
    import numpy as np
    import onnxruntime as ort

    sess = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    for line in sys.stdin:
        if not line.strip():
            continue
        x = np.asarray(json.loads(line)["pixels"], dtype=np.float32)
        logits = sess.run(None, {name: x})[0]
        z = np.exp(logits - logits.max(axis=1, keepdims=True))
        proba = z / z.sum(axis=1, keepdims=True)
        reply = {"labels": logits.argmax(axis=1).tolist(), "probabilities": proba.tolist()}
        print(json.dumps(reply), flush=True)
    return 0


# ------------------------------------------------------------------------------ the trainer
def train_and_export(args: argparse.Namespace, out: str) -> tuple:
    import numpy as np

    import fastbp as fb
    from fastbp.datasets import load_digits

    X, y = load_digits("float32")
    perm = np.random.default_rng(args.seed).permutation(len(X))
    X, y = X[perm], y[perm]
    X_train, y_train, X_test, y_test = X[:1500], y[:1500], X[1500:], y[1500:]
    model = fb.Sequential([fb.Dense(96, "relu"), fb.BatchNorm(), fb.Dropout(0.1),
                           fb.Residual([fb.LayerNorm(), fb.Dense(96, "gelu")]),
                           fb.Dense(10)], input_dim=64, seed=args.seed)
    model.fit(X_train, y_train, loss="softmax_cross_entropy",
              optimizer=fb.optim.Adam(lr=2e-3), epochs=args.epochs, batch_size=32,
              progress=False)
    acc = float(np.mean(model.predict(X_test).argmax(1) == y_test))
    print(f"{model}\nfastbp test accuracy {acc:.3f}")
    path = os.path.join(out, "digits.onnx")
    model.to_onnx(path)
    print(f"exported {path} ({os.path.getsize(path)} bytes)")
    return model, X_test, y_test, path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--serve", metavar="MODEL", help="run the onnxruntime server on MODEL")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch", type=int, default=100, help="samples per request")
    ap.add_argument("--out", help="directory for the .onnx file (default: a temporary one)")
    ap.add_argument("--fast", action="store_true", help="few epochs (for tests)")
    args = ap.parse_args(argv)
    if args.serve:
        return serve(args.serve)
    if args.fast or os.environ.get("FASTBP_EXAMPLES_FAST"):
        args.epochs = min(args.epochs, 5)
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or tmp
        os.makedirs(out, exist_ok=True)
        model, X_test, y_test, path = train_and_export(args, out)
        requests = [json.dumps({"pixels": X_test[i:i + args.batch].tolist()})
                    for i in range(0, len(X_test), args.batch)]
        # -I: isolated mode (no PYTHONPATH, no user site); the server also blocks fastbp
        proc = subprocess.run([sys.executable, "-I", os.path.abspath(__file__), "--serve", path],
                              input="\n".join(requests) + "\n", capture_output=True, text=True,
                              timeout=300)
        if proc.returncode != 0:
            print(proc.stderr)
            return 1
        replies = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    labels = np.concatenate([r["labels"] for r in replies])
    proba = np.concatenate([r["probabilities"] for r in replies])
    expected = model.predict_proba(X_test)
    same = bool(np.array_equal(labels, model.predict(X_test).argmax(1)))
    err = float(np.abs(proba - expected).max())
    acc = float(np.mean(labels == y_test))
    print(f"served {len(labels)} digits in {len(replies)} requests by onnxruntime without "
          f"fastbp: test accuracy {acc:.3f}")
    print(f"labels equal to fastbp's predict: {same}; max |probability difference| {err:.2e}")
    return 0 if (same and err < 1e-5 and acc > 0.8) else 1


if __name__ == "__main__":
    raise SystemExit(main())
