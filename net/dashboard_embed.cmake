# Embeds the dashboard page in a C++ source file, as one raw string literal,
# so that the binary serves it with no file beside it. CMake itself is the
# only tool: the build runs this script (see the root CMakeLists.txt) as
#   cmake -DINPUT=net/dashboard.html -DTEMPLATE=net/dashboard_page.cc.in
#         -DOUTPUT=<build>/generated/net/dashboard_page.cc -P net/dashboard_embed.cmake
# whenever the page, the template or this script changes.
foreach(variable INPUT TEMPLATE OUTPUT)
  if(NOT DEFINED ${variable})
    message(FATAL_ERROR "dashboard_embed.cmake: -D${variable}=... is missing")
  endif()
endforeach()

file(READ "${INPUT}" DASHBOARD_HTML)

# The literal ends at the first )shardctl_page": the page must not hold it.
string(FIND "${DASHBOARD_HTML}" ")shardctl_page\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} holds )shardctl_page\", which would end the raw string "
                      "literal it is embedded in: rephrase it")
endif()
# ASCII only (entities in the markup, \u escapes in the script), so the
# bytes served do not depend on how a compiler reads its source.
string(REGEX MATCH "[^\t\n\r -~]" other "${DASHBOARD_HTML}")
if(other)
  message(FATAL_ERROR "${INPUT} holds a byte outside printable ASCII: use an HTML entity "
                      "or a \\u escape instead")
endif()
# C++ compilers need only take string literals of 65,536 bytes (clang's
# -Wpedantic warns beyond that).
string(LENGTH "${DASHBOARD_HTML}" length)
if(length GREATER 65000)
  message(FATAL_ERROR "${INPUT} is ${length} bytes: one string literal holds at most 65,000 here")
endif()

configure_file("${TEMPLATE}" "${OUTPUT}" @ONLY)
# configure_file leaves an unchanged file as it is: touched, the build sees it done.
file(TOUCH "${OUTPUT}")
