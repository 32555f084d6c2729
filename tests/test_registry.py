"""The registries exported by the native module (``_core.registry()``, ``_core.layer_shapes``):
their content agrees with torch's defaults, with what the native engine accepts and with the
reference engine, and the arena layout they describe is the one both engines build."""
import inspect

import numpy as np
import pytest
import torch

from fastbp import _core
from fastbp.reference import activations as ref_act
from fastbp.reference import losses as ref_losses
from fastbp.reference.engine import Engine

REG = _core.registry()
NETS = {"float32": _core.Network32, "float64": _core.Network64}


def test_registry_keys_and_types():
    assert set(REG) == {"activations", "activation_aliases", "losses", "loss_aliases",
                        "optimizers", "layers", "isas"}
    for a in REG["activations"].values():
        assert set(a) == {"params", "needs_z"} and isinstance(a["needs_z"], bool)
        assert all(isinstance(v, float) for v in a["params"].values())
    for lo in REG["losses"].values():
        assert set(lo) == {"params", "labels"} and isinstance(lo["labels"], bool)
    for table, aliases in (("activations", "activation_aliases"), ("losses", "loss_aliases")):
        for alias, name in REG[aliases].items():
            assert name in REG[table] and alias not in REG[table]
    for o in REG["optimizers"].values():
        assert set(o) == {"hyper", "state"}
        assert next(iter(o["hyper"])) == "lr"
        assert list(o["hyper"])[-2:] == ["clip_norm", "clip_value"]
    assert set(REG["layers"]) == {"dense", "activation", "dropout", "batchnorm", "layernorm",
                                  "residual"}
    for k in REG["layers"].values():
        assert set(k) == {"fields", "params", "buffers"}
        assert all(len(p) == 2 and isinstance(p[1], bool) for p in k["params"])
    assert REG["isas"] == ["generic", "avx2", "avx512"]
    assert set(_core.supported_isas()) <= set(REG["isas"])
    assert _core.registry() == REG  # a fresh, equal copy per call


def test_registry_defaults_are_torchs():
    acts = REG["activations"]
    assert acts["leaky_relu"]["params"] == {"alpha": torch.nn.LeakyReLU().negative_slope}
    assert acts["elu"]["params"] == {"alpha": torch.nn.ELU().alpha}
    assert REG["losses"]["huber"]["params"] == {"delta": torch.nn.HuberLoss().delta}
    assert REG["layers"]["batchnorm"]["fields"]["eps"] == torch.nn.BatchNorm1d(2).eps
    assert REG["layers"]["batchnorm"]["fields"]["momentum"] == torch.nn.BatchNorm1d(2).momentum
    assert REG["layers"]["layernorm"]["fields"]["eps"] == torch.nn.LayerNorm(2).eps
    classes = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
               "rmsprop": torch.optim.RMSprop, "adagrad": torch.optim.Adagrad}
    assert set(REG["optimizers"]) == set(classes)
    for name, cls in classes.items():
        ours = {k: v for k, v in REG["optimizers"][name]["hyper"].items()
                if k not in ("clip_norm", "clip_value")}
        theirs = {}
        for p in list(inspect.signature(cls.__init__).parameters.values())[2:]:
            if p.name == "betas":
                theirs["beta1"], theirs["beta2"] = p.default
            elif p.name in ours:
                theirs[p.name] = p.default
        assert list(ours) == list(theirs), name  # torch's order
        assert ours == pytest.approx(theirs), name


def test_registry_names_match_the_reference():
    assert tuple(REG["activations"]) == tuple(ref_act.ACTIVATIONS)
    for name, a in REG["activations"].items():
        if "alpha" in a["params"]:
            assert ref_act.resolve_alpha(name, None) == a["params"]["alpha"]
        z = np.linspace(-3, 3, 7)
        assert ref_act.act_forward(name, z).shape == z.shape
    assert set(REG["losses"]) == set(ref_losses.LOSSES)


def _net(dtype, spec):
    return NETS[dtype](spec, 0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_activation_names_and_aliases_build_the_same_network(dtype):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 3))
    for name in list(REG["activations"]) + list(REG["activation_aliases"]):
        canon = REG["activation_aliases"].get(name, name)
        nets = [_net(dtype, [{"type": "dense", "in": 3, "out": 4, "activation": n}])
                for n in (name, canon)]
        for n in nets:
            n.arena()[:] = np.linspace(-1, 1, n.num_params)
        np.testing.assert_array_equal(nets[0].predict(X), nets[1].predict(X))
    with pytest.raises(ValueError, match="unknown activation"):
        _net(dtype, [{"type": "dense", "in": 3, "out": 4, "activation": "swish"}])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_activation_param_default_is_used_when_absent(dtype):
    X = np.linspace(-2, 2, 12).reshape(4, 3)
    for name, a in REG["activations"].items():
        for param, default in a["params"].items():
            nets = [_net(dtype, [{"type": "activation", "dim": 3, "activation": name, **extra}])
                    for extra in ({}, {param: default}, {param: default + 0.5})]
            outs = [n.predict(X) for n in nets]
            np.testing.assert_array_equal(outs[0], outs[1])
            assert not np.array_equal(outs[0], outs[2])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_loss_names_aliases_and_labels(dtype):
    rng = np.random.default_rng(1)
    net = _net(dtype, [{"type": "dense", "in": 3, "out": 4, "activation": "tanh"}])
    X = rng.standard_normal((6, 3))
    Y = rng.uniform(0.1, 0.9, (6, 4))
    labels = np.array([0, 1, 2, 3, 1, 0])
    for alias, name in REG["loss_aliases"].items():
        y = labels if REG["losses"][name]["labels"] else Y
        assert net.loss_and_gradients(X, y, alias)[0] == net.loss_and_gradients(X, y, name)[0]
    for name, lo in REG["losses"].items():
        net.loss_and_gradients(X, Y, name)
        if lo["labels"]:
            net.loss_and_gradients(X, labels, name)
        else:
            with pytest.raises(ValueError):
                net.loss_and_gradients(X, labels, name)
        for param, default in lo["params"].items():
            v0 = net.loss_and_gradients(X, Y * 3, name)[0]
            assert net.loss_and_gradients(X, Y * 3, name, {param: default})[0] == v0
            assert net.loss_and_gradients(X, Y * 3, name, {param: default / 4})[0] != v0
    with pytest.raises(ValueError, match="unknown loss"):
        net.loss_and_gradients(X, Y, "hinge")


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_optimizer_hyper_and_state_names(backend):
    spec = [{"type": "dense", "in": 2, "out": 3}]
    eng = _net("float64", spec) if backend == "native" else Engine(spec, "float64", 0)
    on = {"momentum": 0.9, "amsgrad": True, "centered": True}
    for name, o in REG["optimizers"].items():
        hyper = dict(o["hyper"])
        eng.set_optimizer(name, hyper, True)  # every registered key, at its default
        kept = set(eng.optimizer_state()) - {"step"}
        assert kept <= set(o["state"])
        eng.set_optimizer(name, {**hyper, **{k: v for k, v in on.items() if k in hyper}}, True)
        assert list(eng.optimizer_state())[1:] == o["state"], name
        with pytest.raises(ValueError, match="unknown"):
            eng.set_optimizer(name, {"lr": 0.1, "not_a_hyper": 1.0}, True)
    with pytest.raises(ValueError):
        eng.set_optimizer("lbfgs", {}, True)


def _example_spec(kind):
    """A one-layer spec of `kind` built from its registry fields (required ones filled)."""
    fill = {"in": 3, "out": 5, "dim": 3, "layers": [{"type": "dense", "in": 3, "out": 3}]}
    layer = {"type": kind}
    for field, default in REG["layers"][kind]["fields"].items():
        if field in fill:
            layer[field] = fill[field]
        elif default is not None:
            layer[field] = default
    return [layer]


SPECS = [_example_spec(k) for k in REG["layers"]] + [
    [{"type": "dense", "in": 4, "out": 6, "activation": "relu"},
     {"type": "batchnorm", "dim": 6},
     {"type": "residual", "dim": 6, "layers": [
         {"type": "layernorm", "dim": 6},
         {"type": "dense", "in": 6, "out": 6, "activation": "gelu"},
         {"type": "residual", "dim": 6, "layers": [{"type": "batchnorm", "dim": 6}]}]},
     {"type": "dropout", "dim": 6, "rate": 0.1},
     {"type": "dense", "in": 6, "out": 2}],
]


@pytest.mark.parametrize("spec", SPECS,
                         ids=[s[0]["type"] if len(s) == 1 else "deep" for s in SPECS])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layer_shapes_match_both_engines(spec, dtype):
    shapes = _core.layer_shapes(spec)
    params, buffers = shapes["params"], shapes["buffers"]
    for eng in (_net(dtype, spec), Engine(spec, dtype, 0)):
        assert [p[1] for p in params] == [p.shape for p in eng.parameters()]
        assert [b[1] for b in buffers] == [b.shape for b in eng.buffers()]
        assert sum(int(np.prod(p[1])) for p in params) == eng.num_params

    def walk(layers):
        for layer in layers:
            k = REG["layers"][layer["type"]]
            yield from ((name, pen) for name, pen in k["params"])
            yield from walk(layer.get("layers", []))
    assert [(p[0], p[2]) for p in params] == list(walk(spec))


def test_layer_shapes_rejects_what_the_engine_rejects():
    for spec, exc in [("abc", TypeError), ([{"type": "conv", "dim": 3}], ValueError),
                      ([{"type": "dense", "in": 3}], ValueError),
                      ([{"type": "dense", "in": 2**62, "out": 4}], ValueError)]:
        with pytest.raises(exc):
            _core.layer_shapes(spec)
        with pytest.raises(exc):
            _core.Network64(spec, 0)
    with pytest.raises(ValueError, match="unknown layer type"):
        _core.layer_shapes([{"type": "conv", "dim": 3}])


def test_isa_names_are_parsed_in_one_place():
    before = _core.get_isa()
    try:
        for name in _core.supported_isas():
            _core.set_isa(name)
            assert _core.get_isa() == name
    finally:
        _core.set_isa(before)
    with pytest.raises(ValueError, match="generic, avx2, avx512"):
        _core.set_isa("sse2")
