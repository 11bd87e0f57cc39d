// The one translation unit that compiles asio's implementation
// (ASIO_SEPARATE_COMPILATION is set for the whole project in CMakeLists.txt).
#include <asio/impl/src.hpp>
