# Installation: the command, the public headers, the library and a CMake package
# (find_package(skype_etl 1.0 CONFIG REQUIRED) -> skype_etl::skype_etl), a pkg-config file
# (skype-etl.pc), and a Debian package through CPack (cpack -G DEB).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(SKYPE_ETL_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/skype_etl)

install(TARGETS skype-etl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
install(DIRECTORY include/skype_etl DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)

# A static libskype_etl needs its components' archives at link time (they are installed
# under names that say they are internal: only skype_etl::skype_etl is for users); a
# shared one holds them.
set(exported_targets skype_etl skype_etl_pqxx)
if(NOT BUILD_SHARED_LIBS)
  list(APPEND exported_targets skype_etl_core skype_etl_extract skype_etl_transform
    skype_etl_load)
endif()
install(TARGETS ${exported_targets} EXPORT skype_etlTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT skype_etlTargets NAMESPACE skype_etl:: DESTINATION ${SKYPE_ETL_CMAKE_DIR}
  COMPONENT dev)
configure_package_config_file(cmake/skype_etlConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/skype_etlConfig.cmake INSTALL_DESTINATION ${SKYPE_ETL_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/skype_etlConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/skype_etlConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/skype_etlConfigVersion.cmake
  DESTINATION ${SKYPE_ETL_CMAKE_DIR} COMPONENT dev)

# pkg-config: the same library and dependencies. A static libskype_etl lists what it links
# in Requires/Libs (plain `pkg-config --libs skype-etl` links), a shared one in .private.
if(BUILD_SHARED_LIBS)
  set(SKYPE_ETL_PC_LIBS "-lskype_etl")
  set(SKYPE_ETL_PC_REQUIRES "libpqxx libpq nlohmann_json")
  set(SKYPE_ETL_PC_REQUIRES_PRIVATE "tbb simdjson spdlog libcrypto zlib")
else()
  set(SKYPE_ETL_PC_LIBS "-lskype_etl -lskype_etl_load -lskype_etl_transform \
-lskype_etl_extract -lskype_etl_core -pthread")
  set(SKYPE_ETL_PC_REQUIRES "libpqxx libpq nlohmann_json tbb simdjson spdlog libcrypto zlib")
  set(SKYPE_ETL_PC_REQUIRES_PRIVATE "")
endif()
# Relocatable: the prefix is found from where the .pc file is (an install into any prefix,
# a .deb's /usr).
file(RELATIVE_PATH SKYPE_ETL_PC_PREFIX_FROM_PCDIR "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig"
  "/prefix")
configure_file(cmake/skype-etl.pc.in ${CMAKE_CURRENT_BINARY_DIR}/skype-etl.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/skype-etl.pc
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# cpack -G DEB: skype-etl_<version>_amd64.deb with the command, the library and its
# package files; Depends: from dpkg-shlibdeps (the runtime libraries the command links).
set(CPACK_PACKAGE_NAME skype-etl)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_CONTACT "skype-etl maintainers <maintainers@users.noreply.github.com>")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "${PROJECT_HOMEPAGE_URL}")
# The local default database (skype-etl run without --db) runs PostgreSQL's own binaries.
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "postgresql-15 | postgresql")
include(CPack)
