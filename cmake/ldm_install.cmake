# install() and the package config, so that another project can
#   find_package(ldm CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE ldm::ldm)
include(CMakePackageConfigHelpers)

set(LDM_INSTALL_CMAKEDIR ${CMAKE_INSTALL_DATADIR}/cmake/ldm)

install(TARGETS ldm EXPORT ldmTargets)
if(TARGET ldm_cuda)
  install(TARGETS ldm_cuda EXPORT ldmTargets)
endif()
if(TARGET ldm_mpi)
  install(TARGETS ldm_mpi EXPORT ldmTargets)
endif()
if(TARGET ldm_nccl)
  install(TARGETS ldm_nccl EXPORT ldmTargets)
endif()
install(DIRECTORY include/ldm DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# Apache-2.0: the licence travels with every installed copy, and the changelog with it.
install(FILES LICENSE CHANGELOG.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(EXPORT ldmTargets NAMESPACE ldm:: DESTINATION ${LDM_INSTALL_CMAKEDIR})

configure_package_config_file(cmake/ldmConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/ldmConfig.cmake
  INSTALL_DESTINATION ${LDM_INSTALL_CMAKEDIR})
# Header-only: the package fits any architecture.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/ldmConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion
  ARCH_INDEPENDENT)
install(FILES
  cmake/ldm_find_blas.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/ldmConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/ldmConfigVersion.cmake
  DESTINATION ${LDM_INSTALL_CMAKEDIR})
