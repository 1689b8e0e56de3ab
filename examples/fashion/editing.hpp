#pragma once
// The `fashion` commands that edit images with a trained model, on the CPU: `img2img`,
// `inpaint` and `interpolate` (fashion/editing.cpp, a translation unit of its own so that the
// program's other commands do not recompile with them). Each writes one PNG grid and checks
// every flag, input image and mask before it loads the model.

namespace fashion {

int img2img_command(int argc, char** argv);
int inpaint_command(int argc, char** argv);
int interpolate_command(int argc, char** argv);

}  // namespace fashion
