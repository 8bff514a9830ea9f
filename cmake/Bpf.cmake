# Builds a BPF program with clang against the committed vmlinux.h and embeds it in a libbpf skeleton.
#
#   scry_bpf_skeleton(<target> SOURCE <file.bpf.c> NAME <skeleton name> [DEFINES <macro>...])
#
# creates an INTERFACE library <target> whose include directory holds <name>.skel.h.

find_program(SCRY_CLANG NAMES clang clang-14 REQUIRED)
find_program(SCRY_LLVM_STRIP NAMES llvm-strip llvm-strip-14 REQUIRED)
find_program(SCRY_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(SCRY_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(SCRY_BPF_ARCH arm64)
else()
  message(FATAL_ERROR "scry: unsupported architecture ${CMAKE_SYSTEM_PROCESSOR}")
endif()

function(scry_bpf_skeleton target)
  cmake_parse_arguments(ARG "" "SOURCE;NAME" "DEFINES" ${ARGN})
  list(TRANSFORM ARG_DEFINES PREPEND -D)
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/bpf)
  set(obj ${out_dir}/${ARG_NAME}.bpf.o)
  set(skel ${out_dir}/${ARG_NAME}.skel.h)
  get_filename_component(src ${ARG_SOURCE} ABSOLUTE)
  get_filename_component(src_dir ${src} DIRECTORY)
  file(GLOB shared_headers ${PROJECT_SOURCE_DIR}/bpf/include/*.h ${src_dir}/*.h)

  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${SCRY_CLANG} -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_${SCRY_BPF_ARCH}
            ${ARG_DEFINES} -I${PROJECT_SOURCE_DIR}/bpf/include -I${src_dir} -c ${src} -o ${obj}.tmp
    COMMAND ${SCRY_LLVM_STRIP} -g ${obj}.tmp -o ${obj}
    DEPENDS ${src} ${shared_headers}
    COMMENT "BPF ${ARG_NAME}.bpf.o"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${SCRY_BPFTOOL} gen skeleton ${obj} name ${ARG_NAME}_bpf > ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${ARG_NAME}.skel.h"
    VERBATIM)
  add_custom_target(${target}_gen DEPENDS ${skel})
  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_gen)
  target_include_directories(${target} INTERFACE ${out_dir} ${src_dir})
endfunction()
