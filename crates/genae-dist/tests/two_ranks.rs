//! Two real processes on 127.0.0.1: this test binary runs itself again as the ranks (the
//! `rank_main` entry does nothing unless `GENAE_DIST_TEST_ROLE` is set).

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use genae_dist::{DistError, LaunchEnv, World, WorldOptions};
use genae_tensor::{Adam, Collective};
use tch::{nn, Device, Kind, Tensor};

/// 20 Adam steps of a float64 MLP regression on batches of 16 rows; with `count` ranks, rank
/// `rank` takes its equal slice of each batch and the optimiser averages the gradients.
/// Returns the parameters, flattened in name order.
fn train_regression(collective: Option<Arc<dyn Collective>>, rank: usize, count: i64) -> Vec<f64> {
    tch::manual_seed(7);
    let opts = (Kind::Double, Device::Cpu);
    let x = Tensor::randn([320, 3], opts);
    let y = (x.sin() * 2.0).sum_dim_intlist(1, true, Kind::Double);
    tch::manual_seed(1000 + rank as i64); // each rank initialises differently
    let vs = nn::VarStore::new(Device::Cpu);
    let mut vs = vs;
    vs.set_kind(Kind::Double);
    let root = vs.root();
    let l1 = nn::linear(&root / "l1", 3, 8, Default::default());
    let l2 = nn::linear(&root / "l2", 8, 1, Default::default());
    vs.set_kind(Kind::Double);
    let mut names: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    names.sort_by(|a, b| a.0.cmp(&b.0));
    let mut adam = Adam::new(&vs, 0.01);
    if let Some(c) = collective {
        let params: Vec<Tensor> = names.iter().map(|(_, t)| t.shallow_clone()).collect();
        c.broadcast(&params).unwrap(); // rank 0's initialisation everywhere
        adam.set_collective(c);
    }
    let per = 16 / count;
    for step in 0..20 {
        let start = step * 16 + rank as i64 * per;
        let (xb, yb) = (x.narrow(0, start, per), y.narrow(0, start, per));
        let pred = xb.apply(&l1).tanh().apply(&l2);
        let loss = (pred - yb).square().mean(Kind::Double);
        adam.backward_step(&loss).unwrap();
    }
    names
        .iter()
        .flat_map(|(_, t)| Vec::<f64>::try_from(t.reshape([-1])).unwrap())
        .collect()
}

fn parse_params(text: &str) -> Vec<f64> {
    let line = text
        .lines()
        .find_map(|l| l.split_once("params ["))
        .expect(text)
        .1;
    line.trim_end_matches(']')
        .split(", ")
        .map(|v| v.parse().unwrap())
        .collect()
}

const ROLE: &str = "GENAE_DIST_TEST_ROLE";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_rank(role: &str, rank: usize, world: usize, port: u16) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "rank_main", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env("WORLD_SIZE", world.to_string())
        .env("RANK", rank.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env("OMP_NUM_THREADS", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn options(timeout_s: u64) -> WorldOptions {
    WorldOptions {
        timeout: Duration::from_secs(timeout_s),
        heartbeat: Duration::from_millis(300),
        ..Default::default()
    }
}

/// What a rank does, by role.
#[test]
fn rank_main() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let env = LaunchEnv::from_env().unwrap().unwrap();
    match role.as_str() {
        "collectives" => {
            let world = World::init(&env, &options(30)).unwrap();
            let r = env.rank as f64;
            // Two dtypes and a non-contiguous tensor: flattened per dtype, copied back.
            let a = Tensor::from_slice(&[r, 10.0 * r]);
            let b = Tensor::from_slice(&[1.0f32 + r as f32, 2.0, 3.0, 4.0])
                .reshape([2, 2])
                .t_copy()
                .t_();
            let c = Tensor::from_slice(&[r as f32]);
            world
                .allreduce_mean(
                    &[a.shallow_clone(), b.shallow_clone(), c.shallow_clone()],
                    "t",
                )
                .unwrap();
            assert_eq!(Vec::<f64>::try_from(&a).unwrap(), vec![0.5, 5.0]);
            assert_eq!(Vec::<f32>::try_from(&c).unwrap(), vec![0.5]);
            let b_flat = Vec::<f32>::try_from(b.reshape([-1])).unwrap();
            assert!(!b.is_contiguous());
            assert_eq!(b_flat, vec![1.5, 2.0, 3.0, 4.0]);
            let s = Tensor::from_slice(&[r + 1.0]);
            world.allreduce_sum(&[s.shallow_clone()], "s").unwrap();
            assert_eq!(s.double_value(&[0]), 3.0);
            let from_one = Tensor::from_slice(&[r * 7.0, r]).to_kind(Kind::Float);
            world
                .broadcast(&[from_one.shallow_clone()], 1, "broadcast")
                .unwrap();
            assert_eq!(Vec::<f32>::try_from(&from_one).unwrap(), vec![7.0, 1.0]);
            // All-gather (genae-tensor's Collective, by a sum): rank order, then an error on
            // both ranks when they hold different numbers of rows.
            let rows = Tensor::from_slice(&[r as f32, r as f32 + 0.5]).reshape([1, 2]);
            let all = Collective::all_gather(&world, &rows).unwrap();
            assert_eq!(all.size(), [2, 2]);
            assert_eq!(
                Vec::<f32>::try_from(all.reshape([-1])).unwrap(),
                vec![0.0, 0.5, 1.0, 1.5]
            );
            let uneven = Tensor::zeros([1 + env.rank as i64, 2], (Kind::Float, tch::Device::Cpu));
            let err = Collective::all_gather(&world, &uneven).unwrap_err();
            assert!(err.contains("different numbers of rows [1, 2]"), "{err}");
            world.barrier("the end").unwrap();
            println!("rank {} ok", env.rank);
        }
        "mismatch" => {
            let options = WorldOptions {
                check_shapes: true,
                ..options(30)
            };
            let world = World::init(&env, &options).unwrap();
            // Rank 0 sums 1 float, rank 1 sums 2: an error on both, naming the other rank,
            // instead of Gloo aborting the process; the group stays usable.
            let uneven = Tensor::zeros([1 + env.rank as i64], (Kind::Float, tch::Device::Cpu));
            let err = world.allreduce_sum(&[uneven], "the gradients").unwrap_err();
            let other = 1 - env.rank;
            let expected = format!(
                "rank {other} differ from this rank's [Float[{}]]",
                1 + env.rank
            );
            assert!(matches!(err, DistError::Mismatch { .. }), "{err:?}");
            assert!(err.to_string().contains(&expected), "{err}");
            assert!(err.to_string().contains("the gradients"), "{err}");
            let even = Tensor::ones([3], (Kind::Float, tch::Device::Cpu));
            world
                .allreduce_sum(&[even.shallow_clone()], "even")
                .unwrap();
            assert_eq!(even.double_value(&[0]), 2.0);
            println!("rank {} ok", env.rank);
        }
        "wait_then_reduce" => {
            let world = World::init(&env, &options(20)).unwrap();
            world.barrier("start").unwrap();
            if env.rank == 1 {
                println!("rank 1 sleeping");
                std::thread::sleep(Duration::from_secs(600));
            }
            std::thread::sleep(Duration::from_millis(500));
            let t = Tensor::ones([4], (Kind::Float, tch::Device::Cpu));
            let err = world.allreduce_sum(&[t], "gradients").unwrap_err();
            println!("rank 0 error: {err}");
            assert!(matches!(err, DistError::RankLost { .. }), "{err:?}");
            std::process::exit(3);
        }
        "adam" => {
            let world = Arc::new(World::init(&env, &options(30)).unwrap());
            let params = train_regression(Some(world), env.rank, 2);
            println!("params {params:?}");
        }
        "client_only" => {
            let err = World::init(&env, &options(2)).unwrap_err();
            println!("client error: {err}");
            std::process::exit(4);
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn two_ranks_reduce_and_broadcast() {
    let port = free_port();
    let ranks: Vec<Child> = (0..2)
        .map(|r| spawn_rank("collectives", r, 2, port))
        .collect();
    for (r, child) in ranks.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let text = text(&out);
        assert!(out.status.success(), "rank {r}: {text}");
        assert!(text.contains(&format!("rank {r} ok")), "rank {r}: {text}");
    }
}

#[test]
fn with_shape_checks_a_mismatch_is_an_error_on_every_rank() {
    let port = free_port();
    let ranks: Vec<Child> = (0..2).map(|r| spawn_rank("mismatch", r, 2, port)).collect();
    for (r, child) in ranks.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        let text = text(&out);
        assert!(out.status.success(), "rank {r}: {text}");
        assert!(text.contains(&format!("rank {r} ok")), "rank {r}: {text}");
    }
}

#[test]
fn a_killed_rank_is_named_by_the_survivor_within_the_timeout() {
    let port = free_port();
    let rank0 = spawn_rank("wait_then_reduce", 0, 2, port);
    let mut rank1 = spawn_rank("wait_then_reduce", 1, 2, port);
    std::thread::sleep(Duration::from_secs(3));
    let started = Instant::now();
    rank1.kill().unwrap(); // SIGKILL
    let _ = rank1.wait();
    let out = rank0.wait_with_output().unwrap();
    let text = text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    assert!(text.contains("rank 1 was lost"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(20), "{text}");
}

#[test]
fn a_wrong_master_port_is_a_clear_error() {
    let port = free_port(); // nobody serves it
    let out = spawn_rank("client_only", 1, 2, port)
        .wait_with_output()
        .unwrap();
    let text = text(&out);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && text.contains("MASTER_PORT"),
        "{text}"
    );
}

#[test]
fn two_ranks_of_adam_on_half_batches_equal_one_process_on_whole_batches() {
    let port = free_port();
    let ranks: Vec<Child> = (0..2).map(|r| spawn_rank("adam", r, 2, port)).collect();
    let params: Vec<Vec<f64>> = ranks
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", text(&out));
            parse_params(&text(&out))
        })
        .collect();
    assert_eq!(params[0], params[1], "the ranks' parameters are identical");
    // One process, rank 0's initialisation, the whole batches.
    let alone = train_regression(None, 0, 1);
    assert_eq!(alone.len(), params[0].len());
    let moved: f64 = alone
        .iter()
        .zip(&train_regression(None, 0, 1))
        .map(|(a, b)| (a - b).abs())
        .sum();
    assert_eq!(moved, 0.0, "the reference repeats");
    for (a, b) in alone.iter().zip(&params[0]) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
}
