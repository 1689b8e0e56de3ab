#pragma once
/// @file
/// View<T, Shape, Space>: a non-owning, contiguous, row-major window on memory in `Space`.
/// Tensor<T, Shape, Space>: owns such memory (zero-initialised) and is a view of it.
///
/// Both take expressions on the right of =, +=, -=, *=, /= (see ldm/expr/); the assignment
/// operators are defined there so that core/ stays free of the expression machinery. Like Eigen's
/// Map, assigning to a View writes elements; it never rebinds the view.

#include <cassert>
#include <memory>
#include <type_traits>
#include <utility>

#include "ldm/core/dtype.hpp"
#include "ldm/core/macros.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/space.hpp"

// A .cu unit gets device memory too; a .cpp unit never sees a CUDA header.
#if defined(__CUDACC__)
#include "ldm/core/cuda/memory.cuh"
#endif

namespace ldm {

template <class T, ShapeType S, class Space = host>
class View;

namespace detail {
// The pointer at the root of the view hierarchy, always to const: mutability is added by the
// derived View<T>, which casts constness back on for memory it was given as mutable.
template <class T>
class ViewPointer {
 protected:
  LDM_HD explicit ViewPointer(const T* data) : data_(data) {}
  const T* data_;
};

// View<T> derives from View<const T>, and Tensor<T> from View<T>. Template argument deduction
// looks through base classes, so an op declared as f(View<const T, S> x) accepts a mutable view
// or a Tensor and still deduces T and S, with no conversion written at the call site.
template <class T, class S, class Space>
struct view_base {
  using type = View<const T, S, Space>;
};
template <class T, class S, class Space>
struct view_base<const T, S, Space> {
  using type = ViewPointer<T>;
};
}  // namespace detail

/// A non-owning, contiguous, row-major window on `S::size` elements of type `T` in `Space`.
///
/// Copying a view copies the pointer; assigning to one writes its elements. `View<T>` derives
/// from `View<const T>`, so a function taking `View<const T, S>` accepts a mutable view or a
/// Tensor and still deduces `T` and `S`.
/// @tparam T element type (`const` for a read-only view)
/// @tparam S the shape (an ldm::Shape), fixed at compile time
/// @tparam Space ldm::host or ldm::cuda: where the elements live
template <class T, ShapeType S, class Space>
class View : public detail::view_base<T, S, Space>::type {
  static_assert(is_space_v<Space>, "ldm::View: Space must be ldm::host or ldm::cuda");
  using Base = typename detail::view_base<T, S, Space>::type;

 public:
  using value_type = T;                     ///< The element type, `const` for a read-only view.
  using shape = S;                          ///< The shape.
  using space = Space;                      ///< Where the elements live.
  static constexpr int rank = S::rank;      ///< The number of extents.
  static constexpr index_t size = S::size;  ///< The number of elements.
  /// Marks the view as an expression node, so it can stand on the right of an assignment.
  static constexpr bool is_expression_node = true;
  /// The type an expression computes an element in (float for bf16 elements).
  using eval_type = compute_t<std::remove_const_t<T>>;

  /// Views `S::size` elements at `data`, which the caller keeps alive.
  LDM_HD explicit View(T* data) : Base(data) {}
  /// Another view of the same elements.
  View(const View&) = default;

  /// The first element.
  LDM_HD T* data() const { return const_cast<T*>(this->data_); }
  /// Element `i` in row-major order; not bounds-checked.
  LDM_HD T& operator[](index_t i) const { return data()[i]; }
  /// The element at one index per extent, e.g. `x(n, h, w, c)`; not bounds-checked.
  template <class... I>
  LDM_HD T& operator()(I... index) const {
    return data()[S::offset(index...)];
  }

  /// The evaluator interface shared by every expression node: the value at linear index i.
  LDM_HD eval_type eval(index_t i) const { return this->data_[i]; }

  /// The same bytes seen with another shape of equal size (a compile error otherwise).
  template <ShapeType S2>
  View<T, S2, Space> reshape() const {
    static_assert(S2::size == S::size, "ldm::View::reshape: the new shape must have the same size");
    return View<T, S2, Space>(data());
  }

  /// Sample i of the batch (the first extent); `i` must be in [0, S::extents[0]) (asserted).
  View<T, sample_shape_t<S>, Space> sample(index_t i) const {
    assert(i >= 0 && i < S::extents[0]);
    return View<T, sample_shape_t<S>, Space>(data() + i * S::strides[0]);
  }

  /// Count consecutive samples starting at `first`, as a batch of its own; they must lie in the
  /// batch (asserted; a Count over the batch size does not compile).
  template <index_t Count>
  View<T, concat_shape_t<Shape<Count>, sample_shape_t<S>>, Space> batch(index_t first) const {
    static_assert(Count <= S::extents[0], "ldm::View::batch: more samples than the batch holds");
    assert(first >= 0 && first + Count <= S::extents[0]);
    return View<T, concat_shape_t<Shape<Count>, sample_shape_t<S>>, Space>(data() +
                                                                           first * S::strides[0]);
  }

  // Element-writing assignment; the expression overloads live in ldm/expr/assign.hpp.
  /// Writes the elements of `other` into this view's (it never rebinds the view).
  const View& operator=(const View& other) const;
  /// Writes an expression of the same shape (or a number) in the same space into the elements,
  /// in one fused loop or kernel.
  template <class E>
  const View& operator=(const E& expression) const;
  /// Adds an expression of the same shape (or a number) to the elements.
  template <class E>
  const View& operator+=(const E& expression) const;
  /// Subtracts an expression of the same shape (or a number) from the elements.
  template <class E>
  const View& operator-=(const E& expression) const;
  /// Multiplies the elements by an expression of the same shape (or a number).
  template <class E>
  const View& operator*=(const E& expression) const;
  /// Divides the elements by an expression of the same shape (or a number).
  template <class E>
  const View& operator/=(const E& expression) const;

 protected:
  /// Points the view at other memory (for Tensor, whose storage moves).
  LDM_HD void rebind(T* data) { this->data_ = data; }
};

/// The tag of Tensor's constructor that leaves the elements unset, for a tensor the next op
/// overwrites whole (a module's output or input gradient): zeroing those took about 3% of the
/// autoencoder's training step on the host. Built with LDM_POISON_UNINITIALIZED defined (the
/// tests are), such a tensor starts as all-ones bytes instead, a NaN in every floating type, so
/// that reading an element before it is written shows in the results.
struct Uninitialized {
  explicit Uninitialized() = default;
};
/// Pass to Tensor's constructor for a tensor whose elements are left unset.
inline constexpr Uninitialized uninitialized{};

/// An owning tensor: `S::size` zero-initialised elements of type `T` in `Space`.
///
/// An owning tensor is a view of its own storage, so it goes wherever a view goes. Copies are deep;
/// moves leave the source empty (a null data pointer).
/// @tparam T float, bf16, double or int32_t
/// @tparam S the shape (an ldm::Shape), fixed at compile time
/// @tparam Space ldm::host or ldm::cuda
template <class T, ShapeType S, class Space = host>
class Tensor : public View<T, S, Space> {
  static_assert(is_element_type_v<T>, "ldm::Tensor: T must be float, bf16, double or int32_t");
  using Base = View<T, S, Space>;

 public:
  static constexpr std::size_t bytes = sizeof(T) * S::size;  ///< The size of the storage.

  /// Allocates the storage and zeroes it.
  /// @throws std::bad_alloc when the memory cannot be allocated
  Tensor() : Tensor(uninitialized) { zero(); }
  /// Allocates the storage and leaves it unset: Tensor<float, S> dx(ldm::uninitialized);
  /// @throws std::bad_alloc when the memory cannot be allocated
  explicit Tensor(Uninitialized)
      : Base(nullptr), storage_(static_cast<T*>(memory<Space>::allocate(bytes))) {
    this->rebind(storage_.get());
#ifdef LDM_POISON_UNINITIALIZED
    memory<Space>::fill_bytes(data(), 0xFF, bytes);
#endif
  }

  /// A deep copy.
  Tensor(const Tensor& other) : Tensor(uninitialized) {
    view() = other.view();
  }
  /// Takes the storage of `other`, which is left empty.
  Tensor(Tensor&& other) noexcept : Base(other.data()), storage_(std::move(other.storage_)) {
    other.rebind(nullptr);
  }
  /// Copies the elements of `other`.
  Tensor& operator=(const Tensor& other) {
    if (this != &other) view() = other.view();
    return *this;
  }
  /// Takes the storage of `other`, which is left empty.
  Tensor& operator=(Tensor&& other) noexcept {
    storage_ = std::move(other.storage_);
    this->rebind(storage_.get());
    other.rebind(nullptr);
    return *this;
  }

  /// Any expression of the same shape, or a number: Tensor<float, S> y(a * x + b);
  template <class E>
    requires(!std::is_base_of_v<Tensor, std::remove_cvref_t<E>> &&
             (requires { std::remove_cvref_t<E>::is_expression_node; } ||
              std::is_arithmetic_v<std::remove_cvref_t<E>>))
  explicit Tensor(const E& expression) : Tensor(uninitialized) {
    view() = expression;
  }

  /// A view of the elements (read-only through a const Tensor).
  /// @{
  View<T, S, Space> view() { return View<T, S, Space>(data()); }
  View<const T, S, Space> view() const { return View<const T, S, Space>(data()); }
  /// @}

  /// The view's accessors (View::data, View::operator[], View::operator(), View::reshape,
  /// View::sample, View::batch). Through a const Tensor, elements are const: these hide the view's
  /// accessors.
  /// @{
  T* data() { return Base::data(); }
  const T* data() const { return Base::data(); }
  T& operator[](index_t i) { return data()[i]; }
  const T& operator[](index_t i) const { return data()[i]; }
  template <class... I>
  T& operator()(I... index) {
    return data()[S::offset(index...)];
  }
  template <class... I>
  const T& operator()(I... index) const {
    return data()[S::offset(index...)];
  }
  template <ShapeType S2>
  auto reshape() {
    return view().template reshape<S2>();
  }
  template <ShapeType S2>
  auto reshape() const {
    return view().template reshape<S2>();
  }
  auto sample(index_t i) { return view().sample(i); }
  auto sample(index_t i) const { return view().sample(i); }
  template <index_t Count>
  auto batch(index_t first) {
    return view().template batch<Count>(first);
  }
  template <index_t Count>
  auto batch(index_t first) const {
    return view().template batch<Count>(first);
  }
  /// @}

  /// Element-writing assignment of an expression of the same shape (or a number), as View's.
  /// @{
  template <class E>
  Tensor& operator=(const E& expression) {
    view() = expression;
    return *this;
  }
  template <class E>
  Tensor& operator+=(const E& expression) {
    view() += expression;
    return *this;
  }
  template <class E>
  Tensor& operator-=(const E& expression) {
    view() -= expression;
    return *this;
  }
  template <class E>
  Tensor& operator*=(const E& expression) {
    view() *= expression;
    return *this;
  }
  template <class E>
  Tensor& operator/=(const E& expression) {
    view() /= expression;
    return *this;
  }
  /// @}

 private:
  void zero() { memory<Space>::zero(data(), bytes); }

  struct Release {
    void operator()(T* p) const noexcept { memory<Space>::release(p); }
  };
  std::unique_ptr<T, Release> storage_;
};

/// Whether X is an ldm::Tensor.
template <class X>
struct is_tensor : std::false_type {};
/// @cond
template <class T, class S, class Space>
struct is_tensor<Tensor<T, S, Space>> : std::true_type {};
/// @endcond
/// Whether X is an ldm::View (not a Tensor).
template <class X>
struct is_view : std::false_type {};
/// @cond
template <class T, class S, class Space>
struct is_view<View<T, S, Space>> : std::true_type {};
/// @endcond

}  // namespace ldm
