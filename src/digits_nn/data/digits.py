"""scikit-learn's 8x8 handwritten digits: the sizes of the one dataset, named once."""

N_ROWS = 1797  # images
N_PIXELS = 64  # 8 x 8, each an integer from 0 to PIXEL_MAX
PIXEL_MAX = 16
N_CLASSES = 10  # digits 0..9
MIN_CLASS_ROWS = 174  # the fewest images of one digit (8s): at most this many stratified folds
PIXEL_COLUMNS = tuple(f"pixel_{i}" for i in range(N_PIXELS))  # a frame's column names
# The same pixels as load_digits(as_frame=True) names them: pixel_<row>_<column>.
SKLEARN_PIXEL_COLUMNS = tuple(f"pixel_{i // 8}_{i % 8}" for i in range(N_PIXELS))
