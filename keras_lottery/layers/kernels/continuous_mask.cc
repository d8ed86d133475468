// The CS mask of one layer and its gradient, each as one pass over the weights (CPU).
//
// Forward:  m = sigmoid(beta * s),  effective = w * m,  penalty = lambda * sum(m)
// Backward: dw = g * m,  ds = beta * m * (1 - m) * (g * w + offset),
//           where offset = lambda * dL/dpenalty.
//
// TensorFlow runs the same arithmetic as about nine elementwise ops, each a
// pass over memory and an executor dispatch; here every block of the weights
// is read once and finished while it is in cache. Blocks are fixed-size, so
// the penalty's sum is the same whatever the thread count. Built and loaded
// by keras_lottery/native.py; masking.py falls back to TensorFlow ops when it
// is not available.

#include <algorithm>
#include <cstdint>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace keras_lottery {
namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using Vector = Eigen::TensorMap<Eigen::Tensor<float, 1, Eigen::RowMajor>>;
using ConstVector = Eigen::TensorMap<Eigen::Tensor<const float, 1, Eigen::RowMajor>>;

constexpr int64_t kBlock = 8192;  // 32 KiB of float32 per tensor: stays in L1/L2

// Calls fn(block, start, length) for every block of n elements, on TF's CPU threads.
template <typename Fn>
void ForEachBlock(OpKernelContext* context, int64_t n, int64_t cost_per_element, Fn fn) {
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  const auto& threads = *context->device()->tensorflow_cpu_worker_threads();
  tensorflow::Shard(threads.num_threads, threads.workers, blocks, cost_per_element * kBlock,
                    [&](int64_t first, int64_t last) {
                      for (int64_t block = first; block < last; ++block) {
                        const int64_t start = block * kBlock;
                        fn(block, start, std::min(kBlock, n - start));
                      }
                    });
}

float Scalar(OpKernelContext* context, int index) {
  return context->input(index).scalar<float>()();
}

class ContinuousMaskOp : public OpKernel {
 public:
  explicit ContinuousMaskOp(OpKernelConstruction* construction) : OpKernel(construction) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& w = context->input(0);
    const Tensor& s = context->input(1);
    OP_REQUIRES(context, w.shape() == s.shape(),
                tensorflow::errors::InvalidArgument(
                    "w and s must have the same shape, got ", w.shape().DebugString(),
                    " and ", s.shape().DebugString()));
    const float beta = Scalar(context, 2);
    const float lambda = Scalar(context, 3);
    Tensor *effective, *mask, *penalty;
    OP_REQUIRES_OK(context, context->allocate_output(0, w.shape(), &effective));
    OP_REQUIRES_OK(context, context->allocate_output(1, w.shape(), &mask));
    OP_REQUIRES_OK(context, context->allocate_output(2, TensorShape({}), &penalty));
    const int64_t n = w.NumElements();
    const float* w_data = w.flat<float>().data();
    const float* s_data = s.flat<float>().data();
    float* effective_data = effective->flat<float>().data();
    float* mask_data = mask->flat<float>().data();
    std::vector<double> block_sums((n + kBlock - 1) / kBlock, 0.0);
    ForEachBlock(context, n, 20, [&](int64_t block, int64_t start, int64_t length) {
      Vector m(mask_data + start, length);
      Vector product(effective_data + start, length);
      m = (ConstVector(s_data + start, length) * beta).sigmoid();
      product = ConstVector(w_data + start, length) * m;
      Eigen::Tensor<float, 0, Eigen::RowMajor> sum = m.sum();
      block_sums[block] = sum();
    });
    double total = 0.0;
    for (double sum : block_sums) total += sum;
    penalty->scalar<float>()() = lambda * static_cast<float>(total);
  }
};

class ContinuousMaskGradOp : public OpKernel {
 public:
  explicit ContinuousMaskGradOp(OpKernelConstruction* construction) : OpKernel(construction) {}

  void Compute(OpKernelContext* context) override {
    const Tensor& g = context->input(0);
    const Tensor& w = context->input(1);
    const Tensor& mask = context->input(2);
    OP_REQUIRES(context, g.shape() == w.shape() && mask.shape() == w.shape(),
                tensorflow::errors::InvalidArgument("g, w and mask must have the same shape"));
    const float beta = Scalar(context, 3);
    const float offset = Scalar(context, 4);
    Tensor *g_w, *g_s;
    OP_REQUIRES_OK(context, context->allocate_output(0, w.shape(), &g_w));
    OP_REQUIRES_OK(context, context->allocate_output(1, w.shape(), &g_s));
    const float* g_data = g.flat<float>().data();
    const float* w_data = w.flat<float>().data();
    const float* mask_data = mask.flat<float>().data();
    float* g_w_data = g_w->flat<float>().data();
    float* g_s_data = g_s->flat<float>().data();
    ForEachBlock(context, w.NumElements(), 8, [&](int64_t, int64_t start, int64_t length) {
      ConstVector upstream(g_data + start, length);
      ConstVector m(mask_data + start, length);
      Vector(g_w_data + start, length) = upstream * m;
      Vector(g_s_data + start, length) =
          (upstream * ConstVector(w_data + start, length) + offset) * m * (1.0f - m) * beta;
    });
  }
};

}  // namespace
}  // namespace keras_lottery

REGISTER_OP("KerasLotteryContinuousMask")
    .Input("w: float")
    .Input("s: float")
    .Input("beta: float")
    .Input("lambda: float")
    .Output("effective: float")
    .Output("mask: float")
    .Output("penalty: float")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->input(0));
      c->set_output(2, c->Scalar());
      return absl::OkStatus();
    })
    .Doc("CS forward: w * sigmoid(beta * s), the mask, and lambda * sum(mask).");

REGISTER_OP("KerasLotteryContinuousMaskGrad")
    .Input("g: float")
    .Input("w: float")
    .Input("mask: float")
    .Input("beta: float")
    .Input("offset: float")
    .Output("g_w: float")
    .Output("g_s: float")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      c->set_output(0, c->input(0));
      c->set_output(1, c->input(0));
      return absl::OkStatus();
    })
    .Doc("CS backward: g * mask and beta * mask * (1 - mask) * (g * w + offset).");

REGISTER_KERNEL_BUILDER(Name("KerasLotteryContinuousMask").Device(tensorflow::DEVICE_CPU),
                        keras_lottery::ContinuousMaskOp);
REGISTER_KERNEL_BUILDER(Name("KerasLotteryContinuousMaskGrad").Device(tensorflow::DEVICE_CPU),
                        keras_lottery::ContinuousMaskGradOp);
