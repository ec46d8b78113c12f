mod util;
#[allow(unused_imports)]
use util::*;
