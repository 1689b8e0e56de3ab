#pragma once
/// @file
/// What the api_docs check must refuse (the api_docs_catches_mistakes test runs Doxygen with the
/// reference's settings on this file alone). Never included by anything.

namespace ldm {

void undocumented_function(int value);

/// Documented, but the comment names a parameter the function does not have.
/// @param count not a parameter of this function
void misnamed_parameter(int value);

}  // namespace ldm
