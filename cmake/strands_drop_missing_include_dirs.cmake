# strands_drop_missing_include_dirs(): the pip ROS wheels' snag, shared by this package's
# CMakeLists.txt and the bootstrap's build of vendored interface packages (composition_interfaces).
#
# The wheels' exported *__rosidl_generator_py targets carry the include directories of the machine
# that built them (/opt/python/cp311-cp311/...), and CMake refuses to generate with a non-existent
# include directory on an imported target. Drop such entries. On a real ROS install every directory
# exists, so this changes nothing there.
#
# Used two ways:
#   include(cmake/strands_drop_missing_include_dirs.cmake) then strands_drop_missing_include_dirs()
#     at the end of a CMakeLists.txt (after its find_package() calls);
#   -DCMAKE_PROJECT_INCLUDE=<this file> -DSTRANDS_DROP_MISSING_INCLUDE_DIRS_DEFER=ON on the command
#     line of a package we do not edit: the call is deferred to the end of its top directory.
function(strands_drop_missing_include_dirs)
  if(CMAKE_VERSION VERSION_LESS 3.21)
    return()  # IMPORTED_TARGETS needs CMake 3.21; real ROS installs need no fix
  endif()
  get_directory_property(_targets DIRECTORY "${CMAKE_CURRENT_SOURCE_DIR}" IMPORTED_TARGETS)
  foreach(_target IN LISTS _targets)
    get_target_property(_aliased "${_target}" ALIASED_TARGET)
    if(_aliased)
      continue()
    endif()
    get_target_property(_dirs "${_target}" INTERFACE_INCLUDE_DIRECTORIES)
    if(NOT _dirs)
      continue()
    endif()
    set(_kept "")
    set(_dropped "")
    foreach(_dir IN LISTS _dirs)
      # keep generator expressions and relative entries untouched
      if(_dir MATCHES "^\\$<" OR NOT IS_ABSOLUTE "${_dir}" OR EXISTS "${_dir}")
        list(APPEND _kept "${_dir}")
      else()
        list(APPEND _dropped "${_dir}")
      endif()
    endforeach()
    if(_dropped)
      message(STATUS "strands_mesh_ros: ${_target}: dropping missing include dirs: ${_dropped}")
      set_target_properties("${_target}" PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_kept}")
    endif()
  endforeach()
endfunction()

if(STRANDS_DROP_MISSING_INCLUDE_DIRS_DEFER AND NOT _strands_drop_missing_include_dirs_deferred)
  set(_strands_drop_missing_include_dirs_deferred ON)
  cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL strands_drop_missing_include_dirs)
endif()
