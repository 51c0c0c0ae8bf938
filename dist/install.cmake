# How the systemd unit and the sample config are installed. Their places, and
# the paths the unit names, follow the prefix of the install that runs, not the
# one configured: cpack always installs into /usr for the .deb, and
# `cmake --install --prefix DIR` picks its own. So CMakeLists.txt includes this
# file for shardctl_config_dir() and calls shardctl_install_unit_and_config()
# at install time (install(CODE)), where CMAKE_INSTALL_PREFIX is the install's.
#
#   prefix /usr (the .deb)   /usr/lib/systemd/system/shardctl.service, /etc/shardctl/shardctl.toml
#   any other prefix P       P/lib/systemd/system/shardctl.service,    P/etc/shardctl/shardctl.toml
#
# The unit's ExecStart names PREFIX/bin/shardctl and its config file.

# Sets `out` to the directory that holds the config file for an install under
# `prefix`: /etc/shardctl for /usr (as GNUInstallDirs has it: there is no
# /usr/etc), PREFIX/etc/shardctl for any other prefix, and SYSCONFDIR/shardctl
# whatever the prefix when `sysconfdir` (CMAKE_INSTALL_SYSCONFDIR) is an
# absolute path.
function(shardctl_config_dir out prefix sysconfdir)
  if(IS_ABSOLUTE "${sysconfdir}")
    set(dir "${sysconfdir}")
  elseif(prefix MATCHES "^/usr/?$")
    set(dir "/${sysconfdir}")
  else()
    set(dir "${prefix}/${sysconfdir}")
  endif()
  set(${out} "${dir}/shardctl" PARENT_SCOPE)
endfunction()

# Installs dist/shardctl.toml into the config directory and the unit made from
# dist/shardctl.service.in into PREFIX/lib/systemd/system, both under DESTDIR.
# `bindir` and `sysconfdir` are CMAKE_INSTALL_BINDIR and _SYSCONFDIR as
# configured. REQUIRES: runs at install time (CMAKE_INSTALL_PREFIX is the
# install's prefix).
function(shardctl_install_unit_and_config source_dir bindir sysconfdir)
  set(prefix "${CMAKE_INSTALL_PREFIX}")
  cmake_path(ABSOLUTE_PATH bindir BASE_DIRECTORY "${prefix}" OUTPUT_VARIABLE binary_dir)
  set(SHARDCTL_BINARY "${binary_dir}/shardctl")
  shardctl_config_dir(config_dir "${prefix}" "${sysconfdir}")
  set(SHARDCTL_CONFIG_FILE "${config_dir}/shardctl.toml")

  file(INSTALL "${source_dir}/dist/shardctl.toml" DESTINATION "${config_dir}")
  # The unit is written where it goes, not staged in the build tree, so that
  # installs to different prefixes may run at once.
  set(unit "${prefix}/lib/systemd/system/shardctl.service")
  message(STATUS "Installing: $ENV{DESTDIR}${unit}")
  configure_file("${source_dir}/dist/shardctl.service.in" "$ENV{DESTDIR}${unit}" @ONLY)
  # install_manifest.txt lists what file(INSTALL) installed in this scope.
  list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${unit}")
  set(CMAKE_INSTALL_MANIFEST_FILES "${CMAKE_INSTALL_MANIFEST_FILES}" PARENT_SCOPE)
endfunction()
