use super::*;
use std::sync::Mutex;
use tokio::time::Instant;

/// A batch endpoint that records the batches it got: even ids exist, 13 fails on its own,
/// and a batch holding 99 fails whole.
fn endpoint(
    seen: Arc<Mutex<Vec<Vec<u32>>>>,
    latency: Duration,
) -> impl Fn(Vec<u32>) -> BatchFuture<u32, String, String> {
    move |keys: Vec<u32>| {
        let seen = Arc::clone(&seen);
        Box::pin(async move {
            seen.lock().unwrap().push(keys.clone());
            tokio::time::sleep(latency).await;
            if keys.contains(&99) {
                return Err("batch endpoint returned 503".to_string());
            }
            Ok(keys
                .into_iter()
                .filter(|k| k % 2 == 0 || *k == 13)
                .map(|k| (k, if k == 13 { Err("item 13 is corrupt".to_string()) } else { Ok(format!("item-{k}")) }))
                .collect())
        })
    }
}

fn spawn_loads(
    batcher: &Batcher<u32, String, String>,
    keys: &[u32],
) -> Vec<tokio::task::JoinHandle<Result<Option<String>, BatchError<String>>>> {
    keys.iter()
        .map(|&k| {
            let b = batcher.clone();
            tokio::spawn(async move { b.load(k).await })
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_full_batch_goes_at_once_and_a_partial_one_after_max_delay() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let config =
        BatchConfig { max_size: 4, max_delay: Duration::from_millis(10), max_in_flight: 4, ..BatchConfig::default() };
    let batcher = Batcher::new(config, crate::clock::tokio_clock(), endpoint(Arc::clone(&seen), Duration::ZERO));
    let start = Instant::now();
    let full = spawn_loads(&batcher, &[2, 4, 6, 8]);
    for (h, k) in full.into_iter().zip([2, 4, 6, 8]) {
        assert_eq!(h.await.unwrap(), Ok(Some(format!("item-{k}"))));
    }
    assert_eq!(start.elapsed(), Duration::ZERO, "four items fill the batch: no waiting for the delay");

    let start = Instant::now();
    let partial = spawn_loads(&batcher, &[10, 12]);
    for h in partial {
        h.await.unwrap().unwrap();
    }
    assert_eq!(start.elapsed(), Duration::from_millis(10), "two items wait the delay out");
    assert_eq!(*seen.lock().unwrap(), vec![vec![2, 4, 6, 8], vec![10, 12]]);
    let s = batcher.stats();
    assert_eq!((s.batches, s.items, s.flushed_full, s.flushed_by_delay), (2, 6, 1, 1));
    assert_eq!(s.sizes.buckets[1], (2.0, 1), "one batch of 2");
    assert_eq!(s.sizes.buckets[2], (4.0, 2), "and one of 4");
}

#[tokio::test(start_paused = true)]
async fn each_caller_gets_its_own_item_not_found_or_error() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let config =
        BatchConfig { max_size: 8, max_delay: Duration::from_millis(5), max_in_flight: 1, ..BatchConfig::default() };
    let batcher = Batcher::new(config, crate::clock::tokio_clock(), endpoint(Arc::clone(&seen), Duration::ZERO));
    let answers = spawn_loads(&batcher, &[2, 3, 13, 2]);
    let mut got = Vec::new();
    for h in answers {
        got.push(h.await.unwrap());
    }
    assert_eq!(
        got,
        vec![
            Ok(Some("item-2".to_string())),
            Ok(None),
            Err(BatchError::Failed("item 13 is corrupt".to_string())),
            Ok(Some("item-2".to_string())),
        ]
    );
    assert_eq!(seen.lock().unwrap()[0], vec![2, 3, 13], "a key asked twice is sent once");
    // A failed batch call fails each of its callers.
    let failed = spawn_loads(&batcher, &[4, 99]);
    for h in failed {
        assert_eq!(h.await.unwrap(), Err(BatchError::Failed("batch endpoint returned 503".to_string())));
    }
}

#[tokio::test(start_paused = true)]
async fn batches_in_flight_are_bounded() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let config =
        BatchConfig { max_size: 2, max_delay: Duration::from_millis(1), max_in_flight: 1, ..BatchConfig::default() };
    let batcher =
        Batcher::new(config, crate::clock::tokio_clock(), endpoint(Arc::clone(&seen), Duration::from_millis(100)));
    let start = Instant::now();
    let all = spawn_loads(&batcher, &[2, 4, 6, 8, 10, 12]);
    for h in all {
        h.await.unwrap().unwrap();
    }
    // Three batches of two, one at a time, 100 ms each.
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!(start.elapsed(), Duration::from_millis(300));
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_sheds_loads_at_once_instead_of_growing() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let config = BatchConfig { max_size: 2, max_delay: Duration::from_millis(1), max_in_flight: 1, max_queue: 4 };
    let batcher =
        Batcher::new(config, crate::clock::tokio_clock(), endpoint(Arc::clone(&seen), Duration::from_secs(1)));
    let keys: Vec<u32> = (0..20).map(|k| k * 2).collect();
    let mut served = 0;
    let mut shed = 0;
    for h in spawn_loads(&batcher, &keys) {
        match h.await.unwrap() {
            Ok(Some(_)) => served += 1,
            Err(BatchError::Overloaded(crate::Overloaded::QueueFull { retry_after })) => {
                assert_eq!(retry_after, Duration::from_millis(1));
                shed += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(served + shed, 20);
    // At most the queue, the batch being gathered and the one in flight are ever held.
    assert!(shed >= 20 - (4 + 2 + 2), "{served} served, {shed} shed");
    assert!(served >= 4, "{served} served");
}
