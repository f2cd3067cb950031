# stage.cmake - run by cpack (CPACK_PRE_BUILD_SCRIPTS of
# cmake/Packaging.cmake) on the staged install tree, before the .deb is
# made: adds the files that only the Debian package has, so that
# `cmake --install` stays as it is:
#   usr/share/doc/recd/copyright             (packaging/deb/copyright)
#   usr/share/doc/recd/changelog.Debian.gz   (packaging/deb/changelog.in)
#   usr/share/man/man1/<binary>.1.gz         (from each binary's --help)
#   usr/share/lintian/overrides/recd         (packaging/deb/lintian-overrides)
# Dates follow SOURCE_DATE_EPOCH when it is set (reproducible builds).
set(root "${CPACK_TEMPORARY_DIRECTORY}")
set(usr "${root}${CPACK_PACKAGING_INSTALL_PREFIX}")
set(src "${CPACK_RECD_SOURCE_DIR}/packaging/deb")
set(doc "${usr}/share/doc/${CPACK_PACKAGE_NAME}")
set(man "${usr}/share/man/man1")
if(NOT EXISTS "${usr}/bin/recd")
  message(FATAL_ERROR "stage.cmake: no ${usr}/bin/recd in the staging tree")
endif()

find_program(GZIP gzip REQUIRED)
function(gzip_file file)   # file -> file.gz, best compression, no name or time
  execute_process(COMMAND ${GZIP} -9nf "${file}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "stage.cmake: gzip ${file} failed")
  endif()
endfunction()

file(MAKE_DIRECTORY "${doc}" "${man}")
configure_file("${src}/copyright" "${doc}/copyright" COPYONLY)

string(TIMESTAMP date "%a, %d %b %Y %H:%M:%S +0000" UTC)
set(DEB_VERSION "${CPACK_PACKAGE_VERSION}-${CPACK_DEBIAN_PACKAGE_RELEASE}")
set(DEB_MAINTAINER "${CPACK_DEBIAN_PACKAGE_MAINTAINER}")
if(NOT DEB_MAINTAINER)
  set(DEB_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
endif()
set(DEB_DATE "${date}")
configure_file("${src}/changelog.in" "${doc}/changelog.Debian" @ONLY)
gzip_file("${doc}/changelog.Debian")

# A manual page per binary: its --help text, verbatim, under a NAME line.
string(TIMESTAMP mandate "%Y-%m-%d" UTC)
set(summary_recd "exact, real-time recommendations over the Redis protocol")
set(summary_recd-train "train, evaluate, refresh and inspect recd models")
set(summary_recd-bench "benchmarks of recd's scoring, top-k and serving")
set(summary_recd-retrain "retrain the recd model, publish it only if it is not worse")
foreach(prog recd recd-train recd-bench recd-retrain)
  execute_process(COMMAND "${usr}/bin/${prog}" --help
                  OUTPUT_VARIABLE help ERROR_VARIABLE help RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0 OR help STREQUAL "")
    message(FATAL_ERROR "stage.cmake: ${prog} --help failed (${rc})")
  endif()
  # roff: a backslash is \e, a minus is \-, a line may not start with . or '
  string(REPLACE "\\" "\\e" help "${help}")
  string(REPLACE "-" "\\-" help "${help}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" help "${help}")
  string(REPLACE "-" "\\-" name "${prog}")
  string(TOUPPER "${prog}" title)
  file(WRITE "${man}/${prog}.1"
".TH ${title} 1 \"${mandate}\" \"recd ${CPACK_PACKAGE_VERSION}\" \"User Commands\"
.SH NAME
${name} \\- ${summary_${prog}}
.SH DESCRIPTION
The text of
.B ${name} \\-\\-help:
.PP
.nf
${help}.fi
.SH SEE ALSO
.BR recd (1),
.BR recd\\-train (1),
.BR recd\\-retrain (1),
.BR recd\\-bench (1),
/usr/share/doc/recd/README.md,
/etc/recd/recd.conf (every key, annotated).
")
  gzip_file("${man}/${prog}.1")
endforeach()

set(overrides "${usr}/share/lintian/overrides")
file(MAKE_DIRECTORY "${overrides}")
configure_file("${src}/lintian-overrides" "${overrides}/${CPACK_PACKAGE_NAME}" COPYONLY)

# Modes as Debian wants them, whatever the umask of the build or the modes
# of the checkout (git archive makes 0664 files): 0644 for the files added
# here, 0755 for every directory (cpack creates them with the umask).
file(CHMOD_RECURSE "${man}" "${overrides}" "${doc}/copyright" "${doc}/changelog.Debian.gz"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
     DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                           WORLD_READ WORLD_EXECUTE)
file(GLOB_RECURSE dirs LIST_DIRECTORIES true "${root}/*")
foreach(d IN LISTS dirs)
  if(IS_DIRECTORY "${d}" AND NOT IS_SYMLINK "${d}")
    file(CHMOD "${d}" DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
                                            GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  endif()
endforeach()
