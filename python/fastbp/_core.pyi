"""Type stub for the native engine ``fastbp._core`` (src/cpp/bindings/*.cpp).

Keep in step with the bindings: ``python -m mypy.stubtest fastbp._core`` (run by
``.ci/wheel.sh``) and ``tests/test_packaging.py`` fail when a binding is missing here or a name
here is missing from the module. The engine contract is docs/ENGINE.md.
"""
from typing import Any, Dict, Generic, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

import numpy as np
from numpy.typing import NDArray

# ---------------------------------------------------------------------------- core (bind_core)

def get_isa() -> str:
    """Instruction set the kernels use now: generic, avx2 or avx512."""
def set_isa(name: str) -> None:
    """Force the kernels' instruction set; ValueError if this CPU or build lacks it."""
def supported_isas() -> List[str]:
    """Instruction sets this CPU and this build support (always includes generic)."""
def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def max_threads() -> int: ...
def fork_serial() -> bool: ...
def set_check_finite(on: bool) -> None: ...
def get_check_finite() -> bool: ...
def have_openmp() -> bool:
    """Whether the engine was built with OpenMP (else it runs on one thread)."""
def openmp_runtime() -> str:
    """A short description: ``"OpenMP 201511"`` or ``"none"``."""

# ---------------------------------------------------------------------- registries (bind_registry)

def registry() -> Dict[str, Any]:
    """Every registry of the engine as plain data (one fresh copy per call)::

        {"activations": {name: {"params": {param: default}, "needs_z": bool}},
         "activation_aliases": {alias: name},
         "losses": {name: {"params": {param: default}, "labels": bool}},
         "loss_aliases": {alias: name},
         "optimizers": {name: {"hyper": {name: default (torch's order, then clip_norm and
                                          clip_value)}, "state": [state array names]}},
         "layers": {kind: {"fields": {field: default or None (required / derived)},
                           "params": [[name, penalised], ...], "buffers": [name, ...]}},
         "isas": [name, ...]}
    """
def layer_shapes(spec: Sequence[Mapping[str, Any]]) -> Dict[str, List[Tuple[Any, ...]]]:
    """Arena layout of a layer spec: ``{"params": [(name, shape, penalised), ...],
    "buffers": [(name, shape), ...]}`` in arena order (widths are not checked to chain)."""

# ------------------------------------------------------------------------ kernels (bind_kernels)
# C = alpha * op(A) @ op(B) + beta * C, in place on C (C-contiguous, exact dtype).

def gemm_f32(A: NDArray[np.float32], B: NDArray[np.float32], C: NDArray[np.float32],
             transa: bool = False, transb: bool = False, alpha: float = 1.0,
             beta: float = 0.0) -> None: ...
def gemm_naive_f32(A: NDArray[np.float32], B: NDArray[np.float32], C: NDArray[np.float32],
                   transa: bool = False, transb: bool = False, alpha: float = 1.0,
                   beta: float = 0.0) -> None: ...
def gemm_f64(A: NDArray[np.float64], B: NDArray[np.float64], C: NDArray[np.float64],
             transa: bool = False, transb: bool = False, alpha: float = 1.0,
             beta: float = 0.0) -> None: ...
def gemm_naive_f64(A: NDArray[np.float64], B: NDArray[np.float64], C: NDArray[np.float64],
                   transa: bool = False, transb: bool = False, alpha: float = 1.0,
                   beta: float = 0.0) -> None: ...

_F = TypeVar("_F", np.float32, np.float64)
def gemm_info(isa: str = "") -> Dict[str, Any]:
    """GEMM kernel of an ISA (default: the active one): tile, blocking, cache sizes used."""
def gemm_blocking(isa: str, dtype: str, l1d: int, l2: int, l3: int) -> Dict[str, int]:
    """The blocking an ISA's GEMM would derive for the given cache sizes in bytes."""
def fma_peak(dtype: str, iters: int) -> float:
    """Run the active ISA's FMA peak probe; returns the floating-point operations done."""
def vecmath(name: str, x: NDArray[_F], isa: str = "") -> NDArray[_F]:
    """f(x) elementwise (exp, expm1, log1p, tanh, erf) with one ISA's vector math."""
def activation(name: str, z: NDArray[_F], da: NDArray[_F],
               alpha: float = 0.0) -> Tuple[NDArray[_F], NDArray[_F]]:
    """(f(z), da * f'(z)) with the active ISA's activation kernels."""

# ------------------------------------------------------------------------------ engine (bind_nn)

# A layer dict of the spec (docs/ENGINE.md, "Layer spec").
_LayerSpec = Mapping[str, Any]
# y: targets of the model's dtype, (n, k) or (n,) when k == 1, or int64 class labels (n,).
_Target = Union[NDArray[Any], NDArray[np.int64]]

class _Network(Generic[_F]):
    """Shared interface of Network32 (float32) and Network64 (float64); not in the module."""

    def __init__(self, spec: Sequence[_LayerSpec], seed: int = 0) -> None: ...
    @property
    def dtype(self) -> str: ...
    @property
    def in_dim(self) -> int: ...
    @property
    def out_dim(self) -> int: ...
    @property
    def num_params(self) -> int: ...
    @property
    def team_capable(self) -> bool:
        """Whether every layer can run on a thread team (large training steps use one)."""
    @property
    def split_epochs(self) -> int:
        """Epochs this network ran with its hidden units split by strips over a thread team
        (docs/ENGINE.md); the results are those of one thread either way."""
    @property
    def team_backoffs(self) -> int:
        """Times this network's thread team was kept waiting for a team-mate that was not
        running (another process or library on its core) and its calls went to one thread for
        a while (docs/ENGINE.md); the results are those of one thread either way."""
    @property
    def team_probes(self) -> int:
        """Times this network timed a few calls on one thread against its team's recent ones
        (a team slower than one thread backs off; docs/ENGINE.md)."""
    @property
    def rows_steps(self) -> int:
        """Training steps this network's thread team shared by batch rows, meeting twice a step
        (docs/ENGINE.md); the results are those of one thread either way."""
    @property
    def chain_steps(self) -> int:
        """Training steps of this small network run as a chain of direct kernel calls
        (docs/ENGINE.md, "Small networks"); the results are those of the layers' path."""
    def arena(self) -> NDArray[_F]:
        """Live 1-D view of all parameters."""
    def parameters(self) -> List[NDArray[_F]]:
        """Live, writable views: [W1, b1, ...], W shaped (in, out)."""
    def buffers(self) -> List[NDArray[_F]]:
        """Live views of the BatchNorm running statistics."""
    def predict(self, X: NDArray[_F], check_finite: Optional[bool] = None) -> NDArray[_F]: ...
    def loss_and_gradients(self, X: NDArray[_F], y: _Target, loss: str,
                           loss_params: Optional[Dict[str, Any]] = None,
                           sample_weight: Optional[NDArray[_F]] = None,
                           check_finite: Optional[bool] = None, probe: bool = False
                           ) -> Tuple[float, List[NDArray[_F]]]: ...
    def gradient_norms(self, X: NDArray[_F], y: _Target, loss: str,
                       loss_params: Optional[Dict[str, Any]] = None,
                       sample_weight: Optional[NDArray[_F]] = None,
                       check_finite: Optional[bool] = None) -> Tuple[float, List[float]]:
        """loss_and_gradients(probe=True) returning each parameter's gradient L2 norm."""
    def grad_arena(self) -> NDArray[_F]:
        """Live 1-D view of the gradient arena (same layout as arena())."""
    def compute_gradients(self, X: NDArray[_F], y: _Target, loss: str,
                          loss_params: Optional[Dict[str, Any]] = None,
                          sample_weight: Optional[NDArray[_F]] = None,
                          check_finite: Optional[bool] = None) -> float:
        """loss_and_gradients without copies: the gradients stay in grad_arena()."""
    def apply_gradients(self) -> None:
        """Clip and one optimizer update from grad_arena() (train_step's second half)."""
    def train_step(self, X: NDArray[_F], y: _Target, loss: str,
                   loss_params: Optional[Dict[str, Any]] = None,
                   sample_weight: Optional[NDArray[_F]] = None,
                   check_finite: Optional[bool] = None) -> float: ...
    def fit_epoch(self, X: NDArray[_F], y: _Target, loss: str,
                  loss_params: Optional[Dict[str, Any]] = None,
                  sample_weight: Optional[NDArray[_F]] = None, batch_size: int = 32,
                  shuffle: bool = True, lrs: Optional[NDArray[np.float64]] = None,
                  check_finite: Optional[bool] = None) -> float: ...
    def check_batch(self, X: NDArray[_F], y: _Target, loss: str,
                    loss_params: Optional[Dict[str, Any]] = None,
                    sample_weight: Optional[NDArray[_F]] = None,
                    check_finite: Optional[bool] = None) -> None:
        """Check a batch as train_step would, without computing anything."""
    def loss_value(self, outputs: NDArray[_F], y: _Target, loss: str,
                   loss_params: Optional[Dict[str, Any]] = None,
                   sample_weight: Optional[NDArray[_F]] = None) -> float:
        """The loss (no penalties) of given outputs against y."""
    def permutation(self, n: int) -> NDArray[np.int64]:
        """The row order the next shuffled fit_epoch over n rows uses."""
    # Sparse (CSR) input rows for a network whose first layer is dense: scipy.sparse's
    # data, indices, indptr; the gradient of loss_and_gradients_csr is flat (arena layout).
    def predict_csr(self, data: NDArray[Any], indices: NDArray[Any], indptr: NDArray[Any],
                    check_finite: Optional[bool] = None) -> NDArray[_F]: ...
    def loss_and_gradients_csr(self, data: NDArray[Any], indices: NDArray[Any],
                               indptr: NDArray[Any], y: _Target, loss: str,
                               loss_params: Optional[Dict[str, Any]] = None,
                               sample_weight: Optional[NDArray[_F]] = None,
                               check_finite: Optional[bool] = None
                               ) -> Tuple[float, NDArray[_F]]: ...
    def fit_epoch_csr(self, data: NDArray[Any], indices: NDArray[Any], indptr: NDArray[Any],
                      y: _Target, loss: str, loss_params: Optional[Dict[str, Any]] = None,
                      sample_weight: Optional[NDArray[_F]] = None, batch_size: int = 32,
                      shuffle: bool = True, check_finite: Optional[bool] = None) -> float: ...
    def set_optimizer(self, name: str, hyper: Optional[Dict[str, Any]] = None,
                      reset: bool = False) -> None: ...
    def set_lr(self, lr: float) -> None: ...
    def optimizer_name(self) -> str: ...
    def optimizer_state(self) -> Dict[str, Any]:
        """``{"step": int, "<state name>": 1-D array over the arena, ...}``."""
    def set_optimizer_state(self, state: Dict[str, Any]) -> None: ...
    def rng_state(self) -> Tuple[int, int, int]:
        """(seed, step_counter, epoch_counter)."""
    def set_rng_state(self, seed: int, step: int, epoch: int) -> None: ...

class Network32(_Network[np.float32]):
    """The engine in float32."""

class Network64(_Network[np.float64]):
    """The engine in float64."""


def ensemble_fit_epoch(nets: Sequence[_Network[Any]], X: NDArray[Any], y: NDArray[Any],
                       loss: str, delta: float, l1: NDArray[np.float64],
                       l2: NDArray[np.float64], sample_weight: Optional[NDArray[Any]],
                       subsets: Sequence[NDArray[np.int64]], batch_size: int, shuffle: bool,
                       lrs: Sequence[Optional[NDArray[np.float64]]]) -> NDArray[np.float64]:
    """One epoch of every member network on its rows of (X, y); returns the K epoch losses."""
def ensemble_fit_each(nets: Sequence[_Network[Any]], Xs: Sequence[NDArray[Any]],
                      ys: Sequence[NDArray[Any]], sample_weights: Sequence[Optional[NDArray[Any]]],
                      losses: Sequence[str], deltas: NDArray[np.float64],
                      l1: NDArray[np.float64], l2: NDArray[np.float64],
                      batch_sizes: Sequence[int], shuffles: Sequence[bool]) -> NDArray[np.float64]:
    """One epoch of every member network on its own data set; returns the K epoch losses."""
