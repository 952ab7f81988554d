//! The BlobStore conformance suite: every implementation runs it (the folder store always; S3
//! against its emulator).

use bytes::Bytes;

use super::*;

pub async fn run_all(store: &dyn BlobStore) {
    put_get_head_delete(store).await;
    list_is_by_prefix_and_sorted(store).await;
    put_file_moves_a_local_file(store).await;
    keys_cannot_escape(store).await;
    presigned_urls_name_the_object(store).await;
    copy_leaves_the_source(store).await;
}

async fn put_get_head_delete(store: &dyn BlobStore) {
    store.put_bytes("t/a/one.txt", Bytes::from_static(b"hello")).await.unwrap();
    assert_eq!(store.get_bytes("t/a/one.txt").await.unwrap(), Bytes::from_static(b"hello"));
    assert_eq!(store.head("t/a/one.txt").await.unwrap(), Some(5));
    store.put_bytes("t/a/one.txt", Bytes::from_static(b"replaced")).await.unwrap();
    assert_eq!(store.get_bytes("t/a/one.txt").await.unwrap(), Bytes::from_static(b"replaced"));
    let local = store.local_file("t/a/one.txt").await.unwrap();
    assert_eq!(std::fs::read(&local.path).unwrap(), b"replaced");
    store.delete("t/a/one.txt").await.unwrap();
    store.delete("t/a/one.txt").await.unwrap();
    assert_eq!(store.head("t/a/one.txt").await.unwrap(), None);
    assert!(matches!(store.get_bytes("t/a/one.txt").await, Err(BlobError::NotFound(_))));
}

async fn list_is_by_prefix_and_sorted(store: &dyn BlobStore) {
    for k in ["t/l/b", "t/l/a", "t/l/sub/c", "t/lx/d", "t/m/e"] {
        store.put_bytes(k, Bytes::from(k.to_string())).await.unwrap();
    }
    let keys: Vec<String> = store.list("t/l/").await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(keys, ["t/l/a", "t/l/b", "t/l/sub/c"]);
    let keys: Vec<String> = store.list("t/l").await.unwrap().into_iter().map(|m| m.key).collect();
    assert_eq!(keys, ["t/l/a", "t/l/b", "t/l/sub/c", "t/lx/d"]);
    assert_eq!(store.delete_prefix("t/l/").await.unwrap(), 3);
    assert!(store.list("t/l/").await.unwrap().is_empty());
    assert_eq!(store.head("t/lx/d").await.unwrap(), Some(6), "a prefix delete stays within its prefix");
}

async fn put_file_moves_a_local_file(store: &dyn BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("part");
    std::fs::write(&f, vec![7u8; 100_000]).unwrap();
    assert_eq!(store.put_file("t/f/part", &f).await.unwrap(), 100_000);
    assert_eq!(store.get_bytes("t/f/part").await.unwrap().len(), 100_000);
}

async fn copy_leaves_the_source(store: &dyn BlobStore) {
    store.put_bytes("t/c/src.bin", Bytes::from_static(b"copied bytes")).await.unwrap();
    store.copy("t/c/src.bin", "t/c/sub/dst.bin.part").await.unwrap();
    assert_eq!(store.get_bytes("t/c/sub/dst.bin.part").await.unwrap(), Bytes::from_static(b"copied bytes"));
    assert_eq!(store.head("t/c/src.bin").await.unwrap(), Some(12));
    assert!(matches!(store.copy("t/c/missing", "t/c/x").await, Err(BlobError::NotFound(_))));
    assert!(matches!(store.copy("t/c/src.bin", "../x").await, Err(BlobError::InvalidKey(_))));
}

async fn keys_cannot_escape(store: &dyn BlobStore) {
    for bad in ["../x", "/etc/passwd", "t/../../x", "t//x"] {
        assert!(matches!(store.put_bytes(bad, Bytes::new()).await, Err(BlobError::InvalidKey(_))), "{bad}");
    }
}

async fn presigned_urls_name_the_object(store: &dyn BlobStore) {
    store.put_bytes("t/p/file.csv", Bytes::from_static(b"a\n")).await.unwrap();
    let url = store.presign_get("t/p/file.csv", "file.csv", "text/csv", std::time::Duration::from_secs(60)).await.unwrap();
    assert!(url.contains("file.csv"), "{url}");
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn folder_store_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let store = super::folder::FolderBlobStore::new(dir.path().join("b"), "http://127.0.0.1:1".into(), vec![1; 32]).unwrap();
        super::run_all(&store).await;
    }
}
