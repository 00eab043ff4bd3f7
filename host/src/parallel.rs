//! Work spread over the cores: components compiled and configured, bundle
//! layers read and checked.

/// Run `f` on every item on up to as many threads as there are cores (at most
/// one per item); the results in the items' order.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    map_largest_first(items, |_| 0, f)
}

/// [`map`], the items of the largest `size` (the work they take) started
/// first, so that the threads finish close together instead of one thread
/// taking a large item last.
pub(crate) fn map_largest_first<T: Sync, R: Send>(
    items: &[T],
    size: impl Fn(&T) -> u64,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let order = largest_first(items, size);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    let slots: Vec<std::sync::Mutex<&mut Option<R>>> = results.iter_mut().map(std::sync::Mutex::new).collect();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&i) = order.get(k) else { break };
                    let result = f(&items[i]);
                    **slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
                }
            });
        }
    });
    drop(slots);
    // A worker that panicked propagates the panic out of the scope, so every slot is filled.
    results.into_iter().flatten().collect()
}

/// The indices of `items`, largest `size` first; items of equal size keep their order.
fn largest_first<T>(items: &[T], size: impl Fn(&T) -> u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(size(&items[i])));
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keeps_the_order() {
        let items: Vec<usize> = (0..100).collect();
        assert_eq!(map(&items, |i| i * 2), items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(map(&[] as &[usize], |i| *i).is_empty());
    }

    #[test]
    fn largest_first_keeps_the_order_of_the_results() {
        let items: Vec<u64> = vec![3, 90, 7, 90, 1, 500, 42];
        assert_eq!(largest_first(&items, |&n| n), [5, 1, 3, 6, 2, 0, 4]);
        assert_eq!(map_largest_first(&items, |&n| n, |n| n + 1), items.iter().map(|n| n + 1).collect::<Vec<_>>());
    }
}
