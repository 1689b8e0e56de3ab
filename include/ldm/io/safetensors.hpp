#pragma once
// safetensors files (https://github.com/huggingface/safetensors): an 8-byte little-endian header
// size N, N bytes of JSON naming each tensor's dtype, shape and [begin, end) byte range in the
// data buffer that follows, and an optional "__metadata__" object of strings.
//
// A file is untrusted input: SafetensorsFile validates the whole header up front, as strictly as
// the reference reader (the data buffer is covered exactly, without gaps or overlaps), so that
// later reads cannot go wrong; every defect is an ldm::Error naming the file and the tensor.

#include "ldm/io/safetensors/dtype.hpp"
#include "ldm/io/safetensors/reader.hpp"
#include "ldm/io/safetensors/writer.hpp"
