//! Files for tests: copying fixture trees into a temp folder to edit them.

use std::path::Path;

/// Copies the tree `from` into `to` (created), files and folders; symlinks are copied as
/// what they point to (fixtures hold none).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let dest = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).expect("copy");
        }
    }
}
