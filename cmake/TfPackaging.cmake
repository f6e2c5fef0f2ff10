# Install rules that the per-directory CMakeLists do not have, man pages,
# systemd units, example configuration and the CPack .deb (issue 8, item 4).
#
# Included once, at the very end of the top-level CMakeLists.txt, so that
# every program target already exists when this file looks for it.
#
# Layout after `cmake --install` (PREFIX = CMAKE_INSTALL_PREFIX):
#   PREFIX/bin/tradeflow-*                      programs, tradeflow-genfeed
#   PREFIX/share/tradeflow/schemas/*.avsc       (schemas/CMakeLists.txt)
#   PREFIX/share/tradeflow/migrations/*.sql     (schemas/CMakeLists.txt)
#   PREFIX/share/man/man1/tradeflow-*.1.gz      generated with help2man
#   PREFIX/share/doc/tradeflow/                 install.md, examples/
#   SYSTEMD_UNITDIR/tradeflow-*.service         /lib/systemd/system for /usr
#   SYSCONFDIR/tradeflow/{pgpass,kafka.properties}  empty credential files (0600) for the operator to fill
#
# The programs find schemas and migrations relative to their own executable
# (<exe>/../share/tradeflow/...), so any prefix works without environment
# variables.
include_guard(GLOBAL)

option(TF_MAN "Generate man pages from --help with help2man" ON)

set(TF_PROGRAMS tradeflow-produce tradeflow-aggregate tradeflow-relay
  tradeflow-alerts tradeflow-report)

# ---------------------------------------------------------------- programs

# CMake cannot ask whether a target already has an install rule, so the
# directory's CMakeLists.txt is searched for one; a program without any is
# installed from here. Installing a target twice would be harmless but would
# list its file twice in install_manifest.txt.
foreach(_prog ${TF_PROGRAMS})
  if(NOT TARGET ${_prog})
    continue()
  endif()
  get_target_property(_dir ${_prog} SOURCE_DIR)
  set(_text "")
  if(EXISTS "${_dir}/CMakeLists.txt")
    file(READ "${_dir}/CMakeLists.txt" _text)
  endif()
  string(REGEX MATCH "install\\(TARGETS[^)]*[ \t\n]${_prog}[ \t\n)]" _has "${_text}")
  if(NOT _has)
    install(TARGETS ${_prog} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

# Everything `cmake --install` and cpack need, without the tests and the
# benchmarks: deploy/package-test.sh configures with
# -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON and builds only this target.
add_custom_target(tf_package_targets)
foreach(_prog ${TF_PROGRAMS})
  if(TARGET ${_prog})
    add_dependencies(tf_package_targets ${_prog})
  endif()
endforeach()

# The feed generator is a Python script using the standard library only.
install(PROGRAMS ${CMAKE_SOURCE_DIR}/producers/tradeflow-genfeed
  DESTINATION ${CMAKE_INSTALL_BINDIR})

install(FILES ${CMAKE_SOURCE_DIR}/docs/install.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR})
# Example Alertmanager routes for the relay's HTTP delivery (docs/alerts.md).
install(FILES ${CMAKE_SOURCE_DIR}/deploy/alertmanager/alertmanager.yml
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# ---------------------------------------------------------------- man pages

# One-line descriptions for the NAME section (help2man --name).
set(TF_MAN_NAME_tradeflow-produce "validate trade records and publish them to Kafka as Avro")
set(TF_MAN_NAME_tradeflow-aggregate "consume trade records from Kafka into exact running totals in PostgreSQL")
set(TF_MAN_NAME_tradeflow-relay
  "publish ranking-shift alerts to Kafka exactly once, and to Alertmanager and webhooks")
set(TF_MAN_NAME_tradeflow-alerts "follow ranking-shift alerts as they are committed")
set(TF_MAN_NAME_tradeflow-report "write a trade report from the reporting views")
set(TF_MAN_NAME_tradeflow-genfeed "write a synthetic customs or investment feed")

find_program(HELP2MAN_EXECUTABLE help2man)
find_program(GZIP_EXECUTABLE gzip)
if(TF_MAN AND CMAKE_CROSSCOMPILING)
  message(STATUS "tradeflow: no man pages when cross-compiling (help2man runs the programs)")
elseif(TF_MAN AND (TF_SANITIZE OR TF_FUZZ))
  # Instrumented builds are for tests, never installed; a leak report at
  # the exit of --help would fail the build for nothing.
  message(STATUS "tradeflow: no man pages in sanitizer or fuzzing builds")
elseif(TF_MAN AND (NOT HELP2MAN_EXECUTABLE OR NOT GZIP_EXECUTABLE))
  message(WARNING "tradeflow: help2man or gzip not found: no man pages "
    "(apt-get install help2man, or -DTF_MAN=OFF to silence this)")
elseif(TF_MAN)
  set(_man_dir ${CMAKE_BINARY_DIR}/man)
  file(MAKE_DIRECTORY ${_man_dir})
  # Sections help2man cannot take from --help (ENVIRONMENT, FILES, SEE
  # ALSO), with this build's installed paths; docs/man/PROGRAM.h2m, where
  # there is one, replaces a SYNOPSIS that help2man does not find.
  set(TF_MAN_DATADIR ${CMAKE_INSTALL_FULL_DATADIR}/tradeflow)
  set(TF_MAN_DOCDIR ${CMAKE_INSTALL_FULL_DOCDIR})
  set(TF_MAN_SYSCONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/tradeflow)
  foreach(_v TF_MAN_DATADIR TF_MAN_DOCDIR TF_MAN_SYSCONFDIR)
    string(REPLACE "-" "\\-" ${_v} "${${_v}}")
  endforeach()
  configure_file(${CMAKE_SOURCE_DIR}/docs/man/tradeflow.h2m.in ${_man_dir}/tradeflow.h2m @ONLY)
  set(_pages "")
  # help2man runs each program with --help and --version. The environment is
  # cleared of the project's variables so that the pages never show a
  # developer's settings; sanitizer builds run fine (the programs only print).
  set(_h2m ${CMAKE_COMMAND} -E env --unset=TRADEFLOW_BROKERS
    --unset=TRADEFLOW_SCHEMA_DIR --unset=TRADEFLOW_MIGRATIONS_DIR
    ${HELP2MAN_EXECUTABLE} --no-info --section=1 --no-discard-stderr)
  foreach(_prog ${TF_PROGRAMS} tradeflow-genfeed)
    if(_prog STREQUAL "tradeflow-genfeed")
      set(_exe ${CMAKE_SOURCE_DIR}/producers/tradeflow-genfeed)
      set(_dep ${_exe})
      # argparse has no --version: help2man takes it from here instead.
      set(_ver --version-string=${PROJECT_VERSION})
    elseif(TARGET ${_prog})
      set(_exe $<TARGET_FILE:${_prog}>)
      set(_dep ${_prog})
      set(_ver "")
    else()
      continue()
    endif()
    set(_inc --include=${_man_dir}/tradeflow.h2m)
    set(_incdep ${_man_dir}/tradeflow.h2m)
    if(EXISTS ${CMAKE_SOURCE_DIR}/docs/man/${_prog}.h2m)
      list(APPEND _inc --include=${CMAKE_SOURCE_DIR}/docs/man/${_prog}.h2m)
      list(APPEND _incdep ${CMAKE_SOURCE_DIR}/docs/man/${_prog}.h2m)
    endif()
    set(_page ${_man_dir}/${_prog}.1.gz)
    add_custom_command(OUTPUT ${_page}
      COMMAND ${_h2m} ${_ver} ${_inc} "--name=${TF_MAN_NAME_${_prog}}"
              --output=${_man_dir}/${_prog}.1 ${_exe}
      COMMAND ${GZIP_EXECUTABLE} -9nf ${_man_dir}/${_prog}.1
      DEPENDS ${_dep} ${_incdep}
      COMMENT "help2man ${_prog}"
      VERBATIM)
    list(APPEND _pages ${_page})
  endforeach()
  add_custom_target(tf_man ALL DEPENDS ${_pages})
  add_dependencies(tf_package_targets tf_man)
  install(FILES ${_pages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()

# ---------------------------------------------------------------- systemd, /etc

# With the /usr prefix (the .deb) the units go where Debian's own packages put
# them and the configuration into /etc; with any other prefix both stay under
# the prefix, so that `cmake --install --prefix DIR` never writes outside DIR.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(TF_SYSTEMD_UNITDIR "/lib/systemd/system" CACHE STRING "systemd unit directory")
  set(_etc_dest "/etc/tradeflow")
else()
  set(TF_SYSTEMD_UNITDIR "${CMAKE_INSTALL_LIBDIR}/systemd/system" CACHE STRING "systemd unit directory")
  set(_etc_dest "${CMAKE_INSTALL_SYSCONFDIR}/tradeflow")
endif()

# The units in deploy/systemd name /usr/bin and /etc/tradeflow so that they
# can be checked as they are; other prefixes get their own paths here.
set(_unit_out ${CMAKE_BINARY_DIR}/systemd)
file(GLOB _units ${CMAKE_SOURCE_DIR}/deploy/systemd/*.service
  ${CMAKE_SOURCE_DIR}/deploy/systemd/*.target)
set(_unit_files "")
foreach(_u ${_units})
  get_filename_component(_name ${_u} NAME)
  file(READ ${_u} _text)
  string(REPLACE "/usr/bin/" "${CMAKE_INSTALL_FULL_BINDIR}/" _text "${_text}")
  string(REPLACE "/usr/share/doc/tradeflow/" "${CMAKE_INSTALL_FULL_DOCDIR}/" _text "${_text}")
  string(REPLACE "/etc/tradeflow/" "${CMAKE_INSTALL_FULL_SYSCONFDIR}/tradeflow/" _text "${_text}")
  # file(GENERATE) rewrites the file only when its content changes.
  file(GENERATE OUTPUT ${_unit_out}/${_name} CONTENT "${_text}")
  list(APPEND _unit_files ${_unit_out}/${_name})
endforeach()
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_units})
install(FILES ${_unit_files} DESTINATION ${TF_SYSTEMD_UNITDIR})

# Example per-instance environment files: documentation, copied by the
# operator to /etc/tradeflow/ (see docs/install.md).
file(GLOB _examples ${CMAKE_SOURCE_DIR}/deploy/systemd/*.env.example)
install(FILES ${_examples} DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

# Empty credential files for the operator to fill: the units load them with LoadCredential=, which needs the
# files to exist; they hold comments only until the operator fills them in.
# Mode 0600, root: only systemd reads them and hands each service a copy.
install(FILES ${CMAKE_SOURCE_DIR}/deploy/systemd/pgpass
              ${CMAKE_SOURCE_DIR}/deploy/systemd/kafka.properties
  DESTINATION ${_etc_dest}
  PERMISSIONS OWNER_READ OWNER_WRITE)

# ---------------------------------------------------------------- CPack .deb

set(CPACK_PACKAGE_NAME "tradeflow")
set(CPACK_PACKAGE_VENDOR "tradeflow")
set(CPACK_PACKAGE_CONTACT "tradeflow maintainers <tradeflow@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "event-driven trade statistics pipeline (Kafka, Avro, PostgreSQL)")
set(CPACK_PACKAGE_DESCRIPTION
  "Producers validate customs and investment records and publish them to Kafka
as Avro; consumers keep exact running totals, YTD, rankings, YoY and shares in
PostgreSQL, raise ranking-shift alerts and relay them to Kafka. Includes
systemd units for the aggregator (template), the alert relay and a live
producer.")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR "DEB")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.invalid/tradeflow")
# Shared-library dependencies come from dpkg-shlibdeps (dpkg-dev) when it and
# `file` are there: the package then names the libraries of the release it was built on
# (build the .deb on the Debian release it is for: 12 or 13, whose glibc
# differs). The fallback list accepts both releases' names (Debian 13 renamed
# some for the 64-bit time_t transition: libcurl4t64, libmicrohttpd12t64;
# Avro C 1.12 is libavro24). python3 runs tradeflow-genfeed; iso-codes gives
# tradeflow-produce --source its economy codes (read at run time, so
# dpkg-shlibdeps cannot see it); no package
# provides the other requirements.
find_program(DPKG_SHLIBDEPS_EXECUTABLE dpkg-shlibdeps)
# CPack runs `file` on each binary before dpkg-shlibdeps.
find_program(TF_FILE_EXECUTABLE file)
if(DPKG_SHLIBDEPS_EXECUTABLE AND TF_FILE_EXECUTABLE)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "python3, iso-codes")
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "librdkafka1 (>= 2.0), libavro24 | libavro23, libpq5, libjansson4, libcsv3, libcurl4t64 | libcurl4, libmicrohttpd12t64 | libmicrohttpd12, python3, iso-codes")
endif()
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "kcat, postgresql-client")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "postgresql, prometheus-alertmanager")
# Control scripts and conffiles. The list of conffiles must name the absolute
# installed paths, which only the /usr layout has.
set(_deb_ctl ${CMAKE_BINARY_DIR}/debian-control)
file(MAKE_DIRECTORY ${_deb_ctl})
file(WRITE ${_deb_ctl}/conffiles "/etc/tradeflow/pgpass\n/etc/tradeflow/kafka.properties\n")
# systemd is told about new or removed units only where it runs (not in a
# container or a chroot).
file(WRITE ${_deb_ctl}/postinst "#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
fi
exit 0
")
file(WRITE ${_deb_ctl}/prerm "#!/bin/sh
set -e
if [ \"$1\" = remove ] && [ -d /run/systemd/system ]; then
    systemctl stop tradeflow.target 'tradeflow-aggregate@*.service' \\
        'tradeflow-produce-live@*.service' tradeflow-relay.service >/dev/null 2>&1 || true
fi
exit 0
")
file(WRITE ${_deb_ctl}/postrm "#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null || true
fi
exit 0
")
file(CHMOD ${_deb_ctl}/postinst ${_deb_ctl}/prerm ${_deb_ctl}/postrm
  PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
  WORLD_READ WORLD_EXECUTE)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${_deb_ctl}/conffiles ${_deb_ctl}/postinst ${_deb_ctl}/prerm ${_deb_ctl}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# The units' paths, the man pages' FILES and /etc are fixed at configure
# time: a package from another prefix would install broken units, so cpack
# refuses it (this file is read by cpack, not by cmake).
set(_cpack_opts ${CMAKE_BINARY_DIR}/TfCPackOptions.cmake)
file(WRITE ${_cpack_opts} "if(NOT \"${CMAKE_INSTALL_PREFIX}\" STREQUAL \"/usr\")
  message(FATAL_ERROR \"tradeflow: this build is configured for ${CMAKE_INSTALL_PREFIX}; \"
    \"configure with -DCMAKE_INSTALL_PREFIX=/usr to build the package\")
endif()
")
set(CPACK_PROJECT_CONFIG_FILE ${_cpack_opts})
include(CPack)
