// The `fashion` program's GPU path: training and sampling instantiated for ldm::cuda. Compiled by
// nvcc into the program when CUDA is enabled (examples/CMakeLists.txt).
#include <ldm/cuda.cuh>
#include <string>

#include "fashion/common.hpp"

namespace fashion {

std::string cuda_device() {
  if (!ldm::cuda_device::available()) return "";
  int index = 0;
  cudaDeviceProp properties{};
  LDM_CUDA_CHECK(cudaGetDevice(&index));
  LDM_CUDA_CHECK(cudaGetDeviceProperties(&properties, index));
  return "cuda:" + std::to_string(index) + ", " + properties.name;
}

std::optional<int> train_on_cuda(const ldm::train::TrainerSettings& settings,
                                 const Program<Config>& program) {
  return ldm::train::train_on_gpu<Config, micro_batch>(settings, program);
}
std::optional<int> train_on_cuda(const ldm::train::TrainerSettings& settings,
                                 const Program<ClassConfig>& program) {
  return ldm::train::train_on_gpu<ClassConfig, micro_batch>(settings, program);
}
std::optional<int> train_on_cuda(const ldm::train::TrainerSettings& settings,
                                 const Program<TokenConfig>& program) {
  return ldm::train::train_on_gpu<TokenConfig, micro_batch>(settings, program);
}
int sample_on_cuda(const SampleRequest& request) {
  return with_folder_config(request.model_folder,
                            [&]<class C>() { return sample<ldm::cuda, C>(request); });
}

}  // namespace fashion
