"""The vanishing gradient problem, made visible with ``History``'s per-layer gradient norms.

Backpropagation multiplies, layer after layer, by the weights and by the derivative of the
activation. The sigmoid's derivative is at most 1/4, so in a deep sigmoid network the
gradient reaching the first layers is orders of magnitude smaller than at the last layer:
the first layers barely learn. ReLU (derivative 1 where active) with He initialisation (which
keeps the variance of the signal constant from layer to layer) keeps the gradient norms of
all layers within a small factor of each other.

Both networks below have 10 hidden layers of 32 units and train on the digits data;
``fit`` records, after each epoch, the L2 norm of every parameter's gradient on a fixed
sample (``history["grad_norm"]``).

    python examples/vanishing_gradients.py [--epochs 5] [--plot vanishing.png] [--fast]
"""
from __future__ import annotations

import argparse
import os

import numpy as np

import fastbp as fb
from fastbp.datasets import load_digits


def deep_net(activation: str, init: str, depth: int = 10, width: int = 32, seed: int = 0,
             backend: str = "native") -> fb.Sequential:
    layers = [fb.Dense(width, activation, init=init) for _ in range(depth)]
    layers.append(fb.Dense(10, init=init))
    return fb.Sequential(layers, input_dim=64, dtype="float64", seed=seed, backend=backend)


def weight_grad_norms(history: fb.History, epoch: int = 0):
    """(layer names, gradient norm of each dense layer's W) at ``epoch``."""
    pairs = [(n.split(".")[0], g) for n, g in zip(history.param_names, history["grad_norm"][epoch])
             if n.endswith(".W")]
    return [p[0] for p in pairs], np.array([p[1] for p in pairs])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", default="native", choices=["native", "reference"])
    ap.add_argument("--plot", metavar="PNG", help="save both training histories there "
                    "(two files: <name>-sigmoid.png and <name>-relu.png)")
    ap.add_argument("--fast", action="store_true", help="one epoch (for tests)")
    args = ap.parse_args(argv)
    if args.fast or os.environ.get("FASTBP_EXAMPLES_FAST"):
        args.epochs = 1

    X, y = load_digits("float64")
    results = {}
    for act, init in (("sigmoid", "glorot_uniform"), ("relu", "he_uniform")):
        model = deep_net(act, init, depth=args.depth, seed=args.seed, backend=args.backend)
        h = model.fit(X, y, loss="softmax_cross_entropy",
                      optimizer=fb.optim.SGD(lr=0.01, momentum=0.9), epochs=args.epochs,
                      batch_size=32, validation_split=0.2, metrics=["accuracy"], progress=False)
        results[act] = h
        names, norms = weight_grad_norms(h, 0)
        print(f"\n{args.depth} hidden {act} layers ({init}): gradient L2 norm of each weight "
              f"matrix after epoch 1")
        for name, g in zip(names, norms):
            bar = "#" * max(1, int(round(2 * (np.log10(g) + 8)))) if g > 0 else ""
            print(f"  {name:8s} {g:10.3e}  {bar}")
        print(f"  first / last layer: {norms[0] / norms[-1]:.2e}   "
              f"val_accuracy after {len(h)} epoch(s): {h['val_accuracy'][-1]:.3f}")
        if args.plot:
            root, ext = os.path.splitext(args.plot)
            path = f"{root}-{act}{ext or '.png'}"
            fb.plot_history(h, path, title=f"{args.depth} hidden {act} layers ({init}), "
                            "SGD + momentum")
            print(f"  curves saved to {path}")
    _, sig = weight_grad_norms(results["sigmoid"])
    _, rel = weight_grad_norms(results["relu"])
    print(f"\nfirst-layer / last-layer gradient norm: sigmoid {sig[0] / sig[-1]:.1e} "
          f"(vanishing), relu + He {rel[0] / rel[-1]:.2f} (healthy)")
    return 0 if (sig[0] / sig[-1] < 1e-3 and 0.1 < rel[0] / rel[-1] < 10) else 1


if __name__ == "__main__":
    raise SystemExit(main())
