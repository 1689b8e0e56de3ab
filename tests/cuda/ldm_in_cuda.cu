// Compiles ldm.hpp with nvcc: host code paths in a .cu unit, and the expression evaluator and the
// Philox generator inside a __global__ function, as the CUDA executor will use them.
#include <ldm/ldm.hpp>

namespace {
using S = ldm::Shape<2, 3, 5, 7>;

template <class Kernel>
__global__ void run_each(ldm::index_t n, Kernel kernel) {
  for (ldm::index_t i = blockIdx.x * ldm::index_t(blockDim.x) + threadIdx.x; i < n;
       i += ldm::index_t(gridDim.x) * blockDim.x)
    kernel(i);
}

[[maybe_unused]] void instantiate(float* out, const float* a, const ldm::bf16* b,
                                  const float* bias) {
  ldm::View<float, S, ldm::cuda> y(out);
  ldm::View<const float, S, ldm::cuda> x(a);
  ldm::View<const ldm::bf16, S, ldm::cuda> h(b);
  ldm::View<const float, ldm::Shape<7>, ldm::cuda> c(bias);
  auto e = ldm::silu(x * 2.0f + h) * ldm::broadcast<S, 0, 1, 2>(c) + ldm::randn<S>(1, 2) +
           ldm::clamp(ldm::exp(x), 0.0, 1.0);
  using Kernel =
      ldm::expr::AssignKernel<ldm::expr::assign_op::add, float, ldm::expr::node_t<decltype(e)>>;
  run_each<<<1, 128>>>(S::size, Kernel{y.data(), e});
  auto r = ldm::mean<1, 2>(x);
  using ReduceKernel =
      ldm::expr::AssignKernel<ldm::expr::assign_op::set, float, ldm::expr::node_t<decltype(r)>>;
  run_each<<<1, 128>>>(decltype(r)::shape::size, ReduceKernel{out, r});
}
}  // namespace

void ldm_cuda_compile_check_host() {
  ldm::Tensor<float, S> x;
  x = ldm::randn<S>(3);
  x = x * 2.0f + 1.0f;
  (void)ldm::sum(x);
}
