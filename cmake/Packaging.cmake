# Packaging.cmake - the Debian package of recd: `cpack -G DEB` in a build
# directory (scripts/check-deb.sh builds, lints, installs and purges it).
#
# The package installs under /usr whatever CMAKE_INSTALL_PREFIX the build
# was configured with (CPACK_INSTALL_PREFIX below): binaries in /usr/bin,
# units in /usr/lib/systemd/system (recd.service, recd@.service for
# replicas, recd-train/recd-refresh services and timers), the annotated
# /etc/recd/recd.conf as a conffile, README.md and FORMAT.md in
# /usr/share/doc/recd. Its maintainer scripts (packaging/deb/) create the
# system user and group `recd` on install and keep them on purge (Debian's
# practice: files owned by the user may outlive the package; a purge that
# deleted it could leave files to a later user with the same id); purge
# removes /etc/recd/recd.conf (and /etc/recd when nothing else is in it),
# the units' enablement links and the state in /var/lib/recd.
# Run-time dependencies come from dpkg-shlibdeps, on what the binaries link
# (ldd): libopenblas0 (any of its pthread/openmp/serial builds), liblapacke,
# libuv1, libhiredis0.14, libhttp-parser2.9, libsystemd0, zlib1g, libc6;
# adduser for the postinst.
#
# lintian (Debian 12, 2.116; also with --pedantic --info) reports nothing on
# the package built by scripts/check-deb.sh, which fails on any error or
# warning. One tag is overridden, in packaging/deb/lintian-overrides
# (shipped as /usr/share/lintian/overrides/recd): initial-upload-closes-no-
# bugs, as the package is not uploaded to Debian (no ITP bug to close).
# The manual pages are each binary's --help (packaging/deb/stage.cmake).
# The copyright file says that recd declares no license yet.

# The units name /usr/local/bin, where `cmake --install` puts the binaries
# with the default prefix. With any other prefix (/usr for the package) the
# installed units are rewritten to name <prefix>/bin and <prefix>/share/doc;
# with /usr/local this changes nothing. Runs after the units' install rule
# (this file is included after it).
install(CODE "
  set(_recd_units \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\")
  foreach(_u recd.service recd@.service recd-train.service recd-train.timer
             recd-refresh.service recd-refresh.timer)
    if(EXISTS \"\${_recd_units}/\${_u}\")
      file(READ \"\${_recd_units}/\${_u}\" _text)
      set(_old \"\${_text}\")
      string(REPLACE \"/usr/local/bin\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\" _text \"\${_text}\")
      string(REPLACE \"/usr/local/share/doc/recd\" \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DOCDIR}\" _text \"\${_text}\")
      if(NOT _text STREQUAL _old)
        file(WRITE \"\${_recd_units}/\${_u}\" \"\${_text}\")
      endif()
    endif()
  endforeach()")

set(CPACK_PACKAGE_NAME recd)
set(CPACK_PACKAGE_VENDOR "recd")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "recd maintainers <maintainers@users.noreply.h-seed-3f1415c6.example>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "exact, real-time recommendations over the Redis protocol")
set(CPACK_PACKAGE_DESCRIPTION
"recd serves personalized product recommendations to a storefront over the
Redis protocol (RESP2): any Redis client can ask it for a customer's
recommendations, rank a list of items for a customer, or find similar items.
It folds the customer's latest history, read from Redis, into an implicit
ALS model at request time, so answers follow what was bought a second ago.

This package contains the daemon (recd), the trainer (recd-train, and
recd-retrain, which evaluates a new model before rolling it out), the
benchmark tool (recd-bench), and systemd units for the daemon, for several
replicas on one host (recd@NAME.service) and for nightly retraining.")

set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# The install rules write /etc/recd/recd.conf under $DESTDIR: stage with it.
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# postinst runs adduser; recd-retrain is a bash script (bash is essential).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "redis-server, redis-tools")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/packaging/deb/conffiles
    ${CMAKE_SOURCE_DIR}/packaging/deb/postinst
    ${CMAKE_SOURCE_DIR}/packaging/deb/prerm
    ${CMAKE_SOURCE_DIR}/packaging/deb/postrm)

# Files only the package has (copyright, changelog.Debian.gz, manual pages
# made from --help) are added to the staging tree after the install, so that
# `cmake --install` stays as it is.
set(CPACK_RECD_SOURCE_DIR ${CMAKE_SOURCE_DIR})
set(CPACK_PRE_BUILD_SCRIPTS ${CMAKE_SOURCE_DIR}/packaging/deb/stage.cmake)

include(CPack)
