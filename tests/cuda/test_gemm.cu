// The cuBLAS GEMM against the host BLAS run in double: every transpose combination, odd sizes,
// leading dimensions wider than the matrices, alpha and beta other than 0 and 1, float, double
// and bf16 operands.
#include "cuda/support.cuh"

#include <cstdint>
#include <vector>

using namespace ldm;  // `cuda` alone is ambiguous with libcu++'s namespace: say ldm::cuda
using ops::Trans;

namespace {

constexpr int M = 37, N = 19, K = 53, Pad = 3;
constexpr int LDC = N + Pad;
using CShape = Shape<M, LDC>;  // C with three columns of padding, which no call may touch

// Operands in [0.5, 1.5): with no sign changes every element of C is a sum of positive terms, so
// float's error stays below (K + 2) * 2^-24 of the element whatever order cuBLAS sums in, and a
// relative 1e-5 bound cannot fail by cancellation. TF32 (10-bit mantissas) would miss it by 100x.
std::vector<double> positive_values(std::uint64_t seed, std::size_t count) {
  std::vector<double> v(count);
  for (std::size_t i = 0; i < count; ++i)
    v[i] = double(uniform(seed, 0, i) + 0.5f);
  return v;
}

// A row-major op(A) of rows x cols stored with `pad` extra columns.
struct Operand {
  int ld;
  std::vector<double> values;
};
Operand make_operand(Trans t, int rows, int cols, int pad, std::uint64_t seed) {
  const int stored_rows = t == Trans::yes ? cols : rows,
            stored_cols = t == Trans::yes ? rows : cols;
  const int ld = stored_cols + pad;
  return {ld, positive_values(seed, std::size_t(stored_rows) * ld)};
}

template <class T>
std::vector<T> converted(const std::vector<double>& v) {
  std::vector<T> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i)
    out[i] = T(float(v[i]));
  return out;
}
template <>
std::vector<double> converted<double>(const std::vector<double>& v) {
  return v;
}

template <class T>
Buffer<T, ldm::cuda> on_device(const std::vector<T>& v) {
  Buffer<T, ldm::cuda> out(v.size());
  copy_elements<host, ldm::cuda>(v.data(), out.data(), v.size());
  return out;
}

const char* name(Trans t) {
  return t == Trans::yes ? "T" : "N";
}

// Device op(A) op(B) in element type T (C of type TC) against the host in double on the values
// T holds.
template <class T, class TC = T>
void check_gemm(Trans ta, Trans tb, double tolerance) {
  const Operand a = make_operand(ta, M, K, Pad, 1), b = make_operand(tb, K, N, Pad, 2);
  const std::vector<double> c = positive_values(3, std::size_t(M) * LDC);
  using Scalar = std::conditional_t<std::is_same_v<T, double>, double, float>;
  const Scalar alpha = Scalar(0.75), beta = Scalar(-0.5);

  // The reference sees exactly the values the device gets: rounded to T (and C to TC).
  const std::vector<T> a_t = converted<T>(a.values), b_t = converted<T>(b.values);
  const std::vector<TC> c_t = converted<TC>(c);
  std::vector<double> a_ref(a_t.begin(), a_t.end()), b_ref(b_t.begin(), b_t.end());
  Tensor<double, CShape> expected;
  for (index_t i = 0; i < CShape::size; ++i)
    expected[i] = double(c_t[std::size_t(i)]);
  ops::gemm(host{}, ta, tb, M, N, K, double(alpha), a_ref.data(), a.ld, b_ref.data(), b.ld,
            double(beta), expected.data(), LDC);

  const Buffer<T, ldm::cuda> da = on_device(a_t), db = on_device(b_t);
  Buffer<TC, ldm::cuda> dc = on_device(c_t);
  ops::gemm(ldm::cuda{}, ta, tb, M, N, K, alpha, da.data(), a.ld, db.data(), b.ld, beta, dc.data(),
            LDC);
  INFO("op(A) = " << name(ta) << ", op(B) = " << name(tb));
  test::check_close(View<const TC, CShape, ldm::cuda>(dc.data()), expected.view(), tolerance,
                    "C = alpha op(A) op(B) + beta C");
}

constexpr Trans kBoth[] = {Trans::no, Trans::yes};

}  // namespace

TEST_CASE("float gemm: every transpose combination, padded leading dimensions, alpha and beta") {
  for (Trans ta : kBoth)
    for (Trans tb : kBoth)
      check_gemm<float>(ta, tb, test::kFloatTolerance);
}

TEST_CASE("double gemm: every transpose combination") {
  for (Trans ta : kBoth)
    for (Trans tb : kBoth)
      check_gemm<double>(ta, tb, 1e-12);
}

TEST_CASE("packed float gemm with beta = 0 overwrites C without reading it") {
  using Packed = Shape<M, N>;
  for (Trans ta : kBoth)
    for (Trans tb : kBoth) {
      const Operand a = make_operand(ta, M, K, 0, 4), b = make_operand(tb, K, N, 0, 5);
      const std::vector<float> a_f = converted<float>(a.values), b_f = converted<float>(b.values);
      Tensor<double, Packed> expected;
      ops::gemm(host{}, ta, tb, M, N, K, 1.25, a.values.data(), b.values.data(), 0.0,
                expected.data());

      const Buffer<float, ldm::cuda> da = on_device(a_f), db = on_device(b_f);
      auto c = test::poisoned<float, Packed>();
      ops::gemm(ldm::cuda{}, ta, tb, M, N, K, 1.25f, da.data(), db.data(), 0.0f, c.data());
      INFO("op(A) = " << name(ta) << ", op(B) = " << name(tb));
      test::check_close(View<const float, Packed, ldm::cuda>(c.view()), expected.view(),
                        test::kFloatTolerance, "C = 1.25 op(A) op(B) over NaN");
    }
}

// bf16 products are exact in float and cuBLAS accumulates in float (CUBLAS_COMPUTE_32F), so a
// float C is good to float accuracy on the rounded inputs; 1e-4 leaves room for the tensor cores'
// own rounding of the running sums. A bf16 C is additionally rounded to 8 bits once.
TEST_CASE("bf16 gemm: float accumulation into float or bf16 C") {
  for (Trans ta : kBoth)
    for (Trans tb : kBoth) {
      check_gemm<bf16, float>(ta, tb, 1e-4);
      check_gemm<bf16, bf16>(ta, tb, test::kBf16Tolerance);
    }
}

TEST_CASE("packed bf16 gemm") {
  using Packed = Shape<M, N>;
  const Operand a = make_operand(Trans::no, M, K, 0, 6), b = make_operand(Trans::yes, K, N, 0, 7);
  const std::vector<bf16> a_h = converted<bf16>(a.values), b_h = converted<bf16>(b.values);
  std::vector<double> a_ref(a_h.begin(), a_h.end()), b_ref(b_h.begin(), b_h.end());
  Tensor<double, Packed> expected;
  ops::gemm(host{}, Trans::no, Trans::yes, M, N, K, 2.0, a_ref.data(), b_ref.data(), 0.0,
            expected.data());

  const Buffer<bf16, ldm::cuda> da = on_device(a_h), db = on_device(b_h);
  auto c = test::poisoned<float, Packed>();
  ops::gemm(ldm::cuda{}, Trans::no, Trans::yes, M, N, K, 2.0f, da.data(), db.data(), 0.0f,
            c.data());
  test::check_close(View<const float, Packed, ldm::cuda>(c.view()), expected.view(), 1e-4,
                    "C = 2 A B^T from bf16");
}
