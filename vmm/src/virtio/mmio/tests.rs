use super::*;

fn device() -> Transport {
    Transport::new(4, (1 << 32) | 1, &[256])
}

fn negotiate(t: &mut Transport, features: u64) -> Effect {
    t.write(reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
    t.write(reg::DRIVER_FEATURES_SEL, 0);
    t.write(reg::DRIVER_FEATURES, features as u32);
    t.write(reg::DRIVER_FEATURES_SEL, 1);
    t.write(reg::DRIVER_FEATURES, (features >> 32) as u32);
    t.write(
        reg::STATUS,
        status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK,
    )
}

#[test]
fn identifies_itself() {
    let t = device();
    assert_eq!(t.read(reg::MAGIC), Some(MAGIC_VALUE));
    assert_eq!(t.read(reg::VERSION), Some(2));
    assert_eq!(t.read(reg::DEVICE_ID), Some(4));
    assert_eq!(t.read(reg::QUEUE_NUM_MAX), Some(256));
    assert_eq!(t.read(0x104), None);
}

#[test]
fn features_ok_only_for_offered_features() {
    let mut t = device();
    assert_eq!(negotiate(&mut t, 1 << 32), Effect::FeaturesOk(1 << 32));
    assert_ne!(t.read(reg::STATUS).unwrap() & status::FEATURES_OK, 0);
    let mut bad = device();
    assert!(matches!(
        negotiate(&mut bad, (1 << 32) | (1 << 40)),
        Effect::Refused(_)
    ));
    assert_eq!(bad.read(reg::STATUS).unwrap() & status::FEATURES_OK, 0);
}

#[test]
fn driver_ok_needs_features_ok_and_queues_freeze_after_it() {
    let mut t = device();
    t.write(reg::STATUS, status::ACKNOWLEDGE | status::DRIVER);
    assert!(matches!(
        t.write(
            reg::STATUS,
            status::ACKNOWLEDGE | status::DRIVER | status::DRIVER_OK
        ),
        Effect::Refused(_)
    ));
    negotiate(&mut t, 1 << 32);
    t.write(reg::QUEUE_NUM, 128);
    t.write(reg::QUEUE_DESC_LOW, 0x1000);
    t.write(reg::QUEUE_READY, 1);
    let all = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK;
    assert_eq!(t.write(reg::STATUS, all), Effect::DriverOk);
    assert!(matches!(t.write(reg::QUEUE_NUM, 4), Effect::Refused(_)));
    assert_eq!(t.queues()[0].num, 128);
    assert_eq!(t.queues()[0].desc, 0x1000);
    assert_eq!(t.write(reg::STATUS, 0), Effect::Reset);
    assert_eq!(
        t.queues()[0],
        QueueConfig {
            max: 256,
            ..Default::default()
        }
    );
}

#[test]
fn bad_queue_selects_and_sizes_are_caught() {
    let mut t = device();
    t.write(reg::QUEUE_SEL, 7);
    assert_eq!(t.read(reg::QUEUE_NUM_MAX), Some(0));
    assert!(matches!(t.write(reg::QUEUE_NUM, 8), Effect::Refused(_)));
    for (num, ok) in [(0, false), (3, false), (512, false), (64, true)] {
        let q = QueueConfig {
            max: 256,
            num,
            ..Default::default()
        };
        assert_eq!(q.size_ok(), ok, "{num}");
    }
}
