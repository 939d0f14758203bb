//! Snapshot edge cases: states the simulations never reach.

use engine::{AccountId, Command, CommandKind, Engine, EngineConfig, StpMode};

#[test]
fn a_state_with_accounts_but_no_instrument_restores() {
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    for seq in 1..=3u64 {
        let command = Command {
            seq,
            timestamp_ns: seq,
            kind: CommandKind::OpenAccount {
                account: AccountId(100 + seq),
                stp: StpMode::default(),
            },
        };
        engine
            .apply(&command, &mut out)
            .unwrap_or_else(|e| panic!("{e:?}"));
    }
    let restored = Engine::restore(&engine.snapshot()).unwrap_or_else(|e| panic!("restore: {e}"));
    assert_eq!(restored.state_hash(), engine.state_hash());
    assert_eq!(restored.last_seq(), 3);
}

#[test]
fn an_unsealed_copy_is_refused_until_sealed() {
    let mut engine = Engine::new(EngineConfig::default());
    let mut out = Vec::new();
    let command = Command {
        seq: 1,
        timestamp_ns: 1,
        kind: CommandKind::OpenAccount {
            account: AccountId(7),
            stp: StpMode::default(),
        },
    };
    engine
        .apply(&command, &mut out)
        .unwrap_or_else(|e| panic!("{e:?}"));
    let mut bytes = engine.snapshot_unsealed();
    assert!(
        Engine::restore(&bytes).is_err(),
        "a copy without its checksum must not restore"
    );
    engine::seal_snapshot(&mut bytes);
    assert_eq!(bytes, engine.snapshot());
    let restored = Engine::restore(&bytes).unwrap_or_else(|e| panic!("restore: {e}"));
    assert_eq!(restored.state_hash(), engine.state_hash());
}
