// Network: owns every buffer of a model (flat parameter / gradient / buffer arenas, the
// optimizer state, workspaces) and runs predict, loss_and_gradients, train_step and whole
// epochs natively. No allocation per step after the first step at a given batch size.
// Not thread-safe by itself: callers serialise calls with mutex() (the bindings take it around
// every call, bindings/network_calls.h).
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "core/platform.h"
#include "core/stream_vector.h"
#include "core/team.h"
#include "kernels/gemm/gemm.h"
#include "nn/fused_update.h"
#include "nn/layer.h"
#include "nn/registry.h"

namespace fastbp {

// A step of at least this many multiply-adds per forward (its batch times the penalised
// weights' size) runs on a thread team (nn/network.cpp team_threads).
inline constexpr double kTeamMinStepWork = 5.0e5;
// ... and a step its team shares by batch rows (nn/network_rows.cpp), from this many.
inline constexpr double kRowsMinStepWork = 2.0e5;
// A team shares the loss of a batch of at least this many rows, on blocks of 16 rows.
inline constexpr int64_t kTeamLossMinRows = 32;
inline constexpr int64_t kTeamLossRowAlign = 16;

template <typename T>
struct SplitWork;  // nn/network_split.cpp
template <typename T>
struct SplitEpoch;
struct SplitLedger;

struct PenaltyArgs {
  double l1 = 0.0, l2 = 0.0;
};

// A mini-batch target: values (n x k) or integer labels (n); optional sample weights (n).
template <typename T>
struct Target {
  const T* values = nullptr;
  const int64_t* labels = nullptr;
  const T* weight = nullptr;
};

template <typename T>
class Network {
 public:
  Network(const std::vector<LayerSpec>& spec, uint64_t seed);

  int64_t in_dim() const { return body_.in_dim; }
  int64_t out_dim() const { return body_.out_dim; }
  // Whether every layer can run on a thread team (training steps large enough use one).
  bool team_capable() const { return team_capable_; }
  // The epochs fit_epoch ran with the hidden units split by strips (nn/network_split.cpp).
  int64_t split_epochs() const { return split_epochs_; }
  // The times its teams were kept waiting and it went to one thread for a while
  // (core/team.h TeamBackoff).
  int64_t team_backoffs() const { return backoff_.count(); }
  // The times it timed one-thread calls against its team's (core/team.h TeamProbe).
  int64_t team_probes() const { return probe_.count(); }
  void set_team_probe_margin(double m) { probe_.set_margin(m); }  // (tests)
  // The training steps its team shared by batch rows (nn/network_rows.cpp); (tests, benches)
  // whether it may.
  int64_t rows_steps() const { return rows_steps_; }
  int64_t chain_steps() const { return chain_steps_; }
  void set_chain_allowed(bool allowed) {
    chain_allowed_ = allowed;
    chain_n_ = -1;
  }
  void set_rows_allowed(bool allowed) {
    rows_allowed_ = allowed;
    rows_n_ = -1;
  }
  // (tests) A split epoch hands its rest to one thread at this step as if its team had waited
  // too long; -1: only when it does; kSplitNeverYield: never (whatever the waits).
  static constexpr int64_t kSplitNeverYield = -2;
  void set_split_yield_at(int64_t step) { split_yield_at_ = step; }
  const std::vector<ParamInfo>& param_info() const { return pinfo_; }
  const std::vector<ParamInfo>& buffer_info() const { return binfo_; }
  StreamVector<T>& arena() { return params_; }
  StreamVector<T>& grad_arena() { return grads_; }
  StreamVector<T>& buffer_arena() { return buffers_; }
  // The lock of every public method. In a forked child, a network that a thread of the parent
  // was computing with at fork time (its lock held by a thread that does not exist here, its
  // state mid-step) throws std::runtime_error instead of deadlocking.
  std::mutex& mutex();

  // Inference: out (n x out_dim), in chunks of max(rows training reserved,
  // predict_budget_rows()) rows: the workspace does not grow with n.
  void predict(const T* x, T* out, int64_t n);
  // As many rows as fit in kPredictWorkspaceBytes of workspace (at least kPredictMinRows).
  int64_t predict_budget_rows() const;
  static constexpr int64_t kPredictWorkspaceBytes = int64_t(16) << 20;
  static constexpr int64_t kPredictMinRows = 64;
  // Training-mode forward + loss + backward; gradients land in grad_arena(). Returns the loss
  // (penalties included). A `probe` changes no state a training step reads: it uses the
  // dropout stream of the next step without advancing the step counter, and BatchNorm uses
  // batch statistics without updating its running statistics (diagnostics).
  double loss_and_gradients(const T* x, const Target<T>& t, int64_t n, const LossArgs& loss,
                            const PenaltyArgs& pen, bool probe = false);
  double train_step(const T* x, const Target<T>& t, int64_t n, const LossArgs& loss,
                    const PenaltyArgs& pen);
  // The second half of train_step on whatever grad_arena() holds (e.g. gradients summed over
  // ranks by an allreduce): clip, then one optimizer update. Penalties belong to the gradient
  // (loss_and_gradients adds them). grad_arena()'s content afterwards is unspecified
  // (clipping and weight decay work on it in place).
  void apply_gradients() { update(); }
  // One epoch over all N rows in mini-batches (shuffled with the counter-based stream when
  // `shuffle`); lrs: null or one learning rate per step. Returns sum_b loss_b * n_b / N.
  // When `stop` becomes true (polled before each mini-batch) the epoch ends there, between
  // two complete steps; the return value then averages the rows trained.
  double fit_epoch(const T* X, const Target<T>& t, int64_t N, int64_t batch_size, bool shuffle,
                   const double* lrs, const LossArgs& loss, const PenaltyArgs& pen,
                   const std::atomic<bool>* stop = nullptr);

  // Sparse input rows (CSR, in this network's dtype; nn/network_sparse.cpp): the methods
  // above with the first layer's products taken over the non-zeros. Needs a first layer of
  // kind dense (first_layer_dense()); `x` holds n rows (N for fit_epoch_csr) of in_dim().
  bool first_layer_dense() const { return first_dense_; }
  void predict_csr(const CsrRows& x, T* out, int64_t n);
  double loss_and_gradients_csr(const CsrRows& x, const Target<T>& t, int64_t n,
                                const LossArgs& loss, const PenaltyArgs& pen);
  double fit_epoch_csr(const CsrRows& x, const Target<T>& t, int64_t N, int64_t batch_size,
                       bool shuffle, const double* lrs, const LossArgs& loss,
                       const PenaltyArgs& pen);

  // Keeps the state when only hyper-parameters change; resets it when `reset`, or when the
  // kind or the state layout changes.
  void set_optimizer(const OptConfig& cfg, bool reset = false);
  const OptConfig& optimizer() const { return opt_; }
  void set_lr(double lr) { opt_.lr = lr; }
  OptState<T>& opt_state() { return opt_state_; }

  uint64_t seed() const { return seed_; }
  uint64_t step_counter() const { return step_counter_; }
  uint64_t epoch_counter() const { return epoch_counter_; }
  void set_rng_state(uint64_t seed, uint64_t step, uint64_t epoch) {
    seed_ = seed; step_counter_ = step; epoch_counter_ = epoch;
  }

  // Upper bound of the workspace elements one batch row needs (set by the bindings, which
  // refuse batches whose workspace cannot exist before allocating anything).
  int64_t row_elems = 0;

 private:
  void reserve(int64_t n);
  // With a team (core/team.h) every thread of it calls these; the loss is returned to its
  // first thread (0.0 to the others).
  double forward_backward(const T* x, const Target<T>& t, int64_t n, const LossArgs& loss,
                          const PenaltyArgs& pen, const CsrRows& csr = CsrRows{},
                          bool probe = false, const Team& team = kSoloTeam, bool fused = false);
  // Whether a training step of n rows on a team updates the parameters inside backward
  // (nn/fused_update.h; network.cpp): then forward_backward does the update too.
  bool fused_step(int64_t n) const;
  // One training step on `team`: fused on a team of 2+ when fused_step(n), else
  // forward_backward and then the optimizer update.
  // rows_nt: the team size a step shared by batch rows was checked for (rows_fits; 0: none).
  double train_batch(const T* x, const Target<T>& t, int64_t n, const LossArgs& loss,
                     const PenaltyArgs& pen, const Team& team, int rows_nt = 0);
  // A step whose team shares the batch by rows (nn/network_rows.cpp): whether a team of nt
  // shares steps of n rows that way (rows_fits: every product of a thread's part takes the
  // whole product's path; rows_team: that and the options, cached, outside regions: the
  // team size checked, or 0), this thread's part, and the step (every thread calls it).
  bool rows_fits(int64_t n, int nt) const;
  int rows_team(int64_t n, int threads, const PenaltyArgs& pen);
  int step_threads(int64_t N, int64_t batch_size, int64_t key, const PenaltyArgs& pen,
                   int& rows_full, int& rows_last);
  // A step of n rows on one thread as a chain of direct kernel calls (nn/network_chain.cpp):
  // whether it fits (every layer dense, every product gemm's tiny path; kept per n and ISA)
  // and its forward, loss and backward -- forward_backward's results, by the same kernels.
  static constexpr int kChainMaxLayers = 8;
  bool chain_fits(int64_t n);
  double chain_forward_backward(const T* x, const Target<T>& t, int64_t n, const LossArgs& loss,
                                const PenaltyArgs& pen);
  RowsPart rows_part(const Team& team, int64_t n) const;
  double rows_step(const T* x, const Target<T>& t, int64_t n, const LossArgs& loss,
                   const PenaltyArgs& pen, const Team& team);
  FASTBP_NOINLINE double team_loss(const Target<T>& t, int64_t n, const LossArgs& loss,
                                   const Team& team);
  double add_penalty(const PenaltyArgs& pen);
  // The penalty folded into the optimizer's update (nn/network_penalty.cpp): whether a step
  // does it, the update itself (every thread of `team` calls it; returns the penalty to the
  // first), one thread's share of it, and the arena's items it is shared by.
  bool penalty_folds(const PenaltyArgs& pen) const;
  // Whether a step writes into the whole gradient arena beyond backward's products: the
  // penalty pass (a penalty that does not fold), or a coupled weight decay applied in place.
  bool gradient_written_whole(const PenaltyArgs& pen) const;
  // fb(penalty) (forward and backward, adding `penalty` to the gradient) and the update, the
  // penalty folded into the update when it can be (penalty_folds; the same bits either way).
  template <typename F>
  double backward_and_update(const PenaltyArgs& pen, const Team& team, bool may_open_region,
                             F&& fb);
  double update_penalised(const PenaltyArgs& pen, const Team& team, bool may_open_region);
  void fold_share(T l1, T l2, int64_t step, const Team& share);
  void fold_items(int64_t chunk);
  // shared: every thread of the team read all the parameters (opt_step).
  void update(const Team& team = kSoloTeam, bool may_open_region = true, bool shared = false);
  // The thread count of a team for training steps of n rows: 1 (no team) unless every layer
  // can run on one (team_capable), no parallel region is open and the step is large enough to
  // share (network.cpp, kTeamMinStepWork); 0 when it would share but its teams are backing off
  // (backoff_): one thread, its products too.
  // `key`: the call's size for TeamProbe (train_step: n; an epoch: its shape); kProbe (-1):
  // one thread, its products too, timed for TeamProbe.
  // by_rows: the team would share the step by batch rows (rows_team), which pays from a
  // smaller step (kRowsMinStepWork).
  int team_threads(int64_t n, int64_t key, bool by_rows = false);
  // body(team) on a team of `threads` threads (directly, as one thread, when threads < 2; with
  // every parallel region on one thread when threads <= 0).
  template <typename F>
  void run_team(int threads, int64_t key, F&& body);
  // A whole epoch of a two-layer network on a team that owns its hidden units by strips
  // (nn/network_split.cpp): whether fit_epoch takes it (the same results either way), its
  // buffers (allocated before anything changes), the strips' copies of the arena, and the
  // epoch: adds sum_b loss_b * n_b to `total`, sets `trained` (the rows trained) and
  // `stopped` (by `stop`); returns the row of the first mini-batch it left untrained (N when
  // done): a team kept waiting for a descheduled thread hands the rest to fit_epoch's loop.
  bool split_fits(int64_t N, int64_t batch_size) const;
  void split_reserve(int64_t rows, int threads);
  void split_copy(bool to_strips);
  int64_t fit_epoch_split(const T* X, const Target<T>& t, int64_t N, int64_t batch_size,
                          const double* lrs, const LossArgs& loss, const PenaltyArgs& pen,
                          const std::atomic<bool>* stop, int threads, double& total,
                          int64_t& trained, bool& stopped);
  void split_steps(const SplitEpoch<T>& e, SplitLedger& led, const Team& team, int64_t N,
                   int64_t batch_size, const double* lrs, const std::atomic<bool>* stop,
                   double& total, int64_t& trained);
  // Mini-batch rows [r0, r1) of an epoch (perm_ from `start`) into the gather buffers.
  void gather(const T* X, const Target<T>& t, int64_t start, int64_t r0, int64_t r1);
  // perm_ = 0..N-1, shuffled with the epoch's counter-based stream when `shuffle` (which
  // advances the epoch counter).
  void epoch_order(int64_t N, bool shuffle);
  // fit_epoch_csr's mini-batch of nb rows (perm_ from `start`) into its gather buffers, and
  // one training step on it (nn/network_sparse.cpp).
  Target<T> gather_csr(const CsrRows& x, const Target<T>& t, int64_t start, int64_t nb);
  double csr_step(const Target<T>& tb, int64_t nb, const LossArgs& loss, const PenaltyArgs& pen,
                  bool& grad_zero);

  int layer_count_ = 0;  // declared before body_: body_'s constructor numbers the layers
  Sequential<T> body_;
  bool has_batchnorm_ = false;
  bool team_capable_ = false;
  // A batch of one row computes the wide dense weights by row units, in every training step
  // (fused or not, so that compute_gradients + apply_gradients == train_step bitwise).
  bool row_units_ = false;
  // (nn/network_rows.cpp: a network of dense layers; the last rows_fits answer: rows,
  // threads, ISA, and the answer)
  bool rows_capable_ = false;
  int64_t rows_n_ = -1;
  int rows_threads_ = 0, rows_isa_ = -1;
  bool rows_ok_ = false;
  bool rows_allowed_ = true;
  int64_t rows_steps_ = 0;
  int64_t chain_n_ = -1;
  int chain_isa_ = -1;
  // (the tiny kernel of chain_isa_ when the chain fits chain_n_ rows, else null)
  GemmFn<T> chain_tiny_ = nullptr;
  bool chain_allowed_ = true;
  int64_t chain_steps_ = 0;
  // (the chain's layers, pointing into the buffers as they were at reserved_ ==
  // chain_reserved_)
  ChainLayer<T> chain_[kChainMaxLayers];
  int chain_count_ = 0;
  int64_t chain_reserved_ = -1;
  bool split_capable_ = false;  // (nn/network_split.cpp: a two-layer dense network, ...)
  int64_t split_hidden_ = 0;     // its hidden units
  Act split_act_ = Act::identity;
  T split_alpha_ = T(0);
  std::shared_ptr<SplitWork<T>> split_;
  int64_t split_epochs_ = 0;
  int64_t split_yield_at_ = -1;
  TeamBackoff backoff_;  // (its teams kept off their cores: calls on one thread for a while)
  TeamProbe probe_;      // (and whether its team beats one thread at all, measured)
  double macs_per_row_ = 0.0;  // of the dense products of one forward (penalised weights)
  std::vector<ParamInfo> pinfo_, binfo_;
  // (staggered modulo 4 KiB with the optimizer state: core/stream_vector.h)
  StreamVector<T> params_{StreamAlloc<T>(kParamsSlot)}, grads_{StreamAlloc<T>(kGradsSlot)},
      buffers_{StreamAlloc<T>(kBuffersSlot)};
  // The penalised weights (their blocks, nn/fused_update.h), and the two penalty sums per
  // block of a fused or folded update.
  std::vector<PenalisedWeight> penalised_weights_;
  std::vector<double> fused_parts_;
  // The arena in arena order as the folded update takes it: the penalised weights' blocks
  // (block >= 0: its index among them) and the rest in pieces (block -1); r rows of w
  // elements at stride ld from off. item_start_[i]: the elements before item i.
  struct FoldItem {
    int64_t off, r, w, ld, block;
  };
  std::vector<FoldItem> items_;
  std::vector<int64_t> item_start_;
  std::vector<T> out_, dout_;                            // logits and their gradient
  std::vector<T> xb_, yb_, wb_;                          // fit mini-batch gather buffers
  std::vector<int64_t> lb_, perm_;
  std::vector<int64_t> csr_ptr_, csr_idx_;                // fit_epoch_csr mini-batch rows
  std::vector<T> csr_val_;
  bool first_dense_ = false;
  int64_t reserved_ = 0;
  OptConfig opt_;
  OptState<T> opt_state_;
  uint64_t seed_ = 0, step_counter_ = 0, epoch_counter_ = 0;
  std::mutex mu_;
  std::atomic<int64_t> busy_pid_{0};  // process whose thread runs a compute method, 0: none
  std::vector<double> loss_terms_;  // each row's loss term, a team's shared loss (team_loss)
  // Marks the network busy (with this process's id) for the duration of a compute method,
  // dense or sparse (the fork check of mutex()).
  struct BusyMark {
    std::atomic<int64_t>& pid;
    explicit BusyMark(std::atomic<int64_t>& p) : pid(p) { pid.store(process_id()); }
    ~BusyMark() { pid.store(0); }
  };
};

template <typename T>
template <typename F>
FASTBP_ALWAYS_INLINE double Network<T>::backward_and_update(const PenaltyArgs& pen,
                                                            const Team& team,
                                                            bool may_open_region, F&& fb) {
  if (penalty_folds(pen)) return fb(PenaltyArgs{}) + update_penalised(pen, team, may_open_region);
  const double value = fb(pen);
  update(team, may_open_region);
  return value;
}

}  // namespace fastbp
