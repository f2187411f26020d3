//! The straight-through vector quantizer against hand-worked examples and brute force.

use std::sync::{Mutex, MutexGuard};

use genae_samplers::{
    perplexity, CodebookUpdate, LossReduction, QuantizerConfig, SamplerError, VectorQuantizer,
};
use tch::{nn, Device, Kind, Tensor};

const F64: (Kind, Device) = (Kind::Double, Device::Cpu);

/// libtorch's random generator is global to the process while tests run on parallel threads:
/// every test that draws random numbers holds this lock, so its draws are its own and
/// repeatable.
fn torch_rng_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A CPU var store whose new variables are `f64`.
fn double_store() -> nn::VarStore {
    let mut vs = nn::VarStore::new(Device::Cpu);
    vs.set_kind(Kind::Double);
    vs
}

fn config(num_codes: i64, code_dim: i64) -> QuantizerConfig {
    QuantizerConfig {
        num_codes,
        code_dim,
        ..Default::default()
    }
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).reshape([-1])).unwrap()
}

fn ints(t: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(&t.reshape([-1])).unwrap()
}

fn scalar(t: &Tensor) -> f64 {
    t.double_value(&[])
}

fn assert_close(actual: f64, expected: f64, tol: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= tol,
        "{what}: got {actual}, expected {expected}"
    );
}

/// Rows `[M, d]` of a channels-first grid `[N, d, H, W]`, in `N, H, W` order.
fn grid_rows(z: &Tensor) -> Tensor {
    let d = z.size()[1];
    z.permute([0, 2, 3, 1]).reshape([-1, d])
}

#[test]
fn straight_through_gradient_is_the_identity() {
    let _rng = torch_rng_lock();
    tch::manual_seed(1);
    for shape in [vec![2, 3, 4, 4], vec![10, 3]] {
        let vs = nn::VarStore::new(Device::Cpu);
        let vq = VectorQuantizer::new(&vs.root(), &config(5, 3)).unwrap();
        let z_e =
            Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu)).set_requires_grad(true);
        let w = Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu));
        let out = vq.forward_t(&z_e, true).unwrap();
        assert_eq!(out.quantized.size(), shape);
        (&w * &out.quantized).sum(Kind::Float).backward();
        // d(w · out)/d z_e = w exactly: the gradient at z_q is passed to z_e unchanged.
        assert!(
            z_e.grad().equal(&w),
            "gradient reaching z_e differs from w ({shape:?})"
        );
        // ... and none reaches the codebook through the straight-through output.
        let g = vq.codebook().grad();
        assert!(!g.defined() || scalar(&g.abs().max()) == 0.0);
        // The forward value is the nearest code.
        let z_q = vq.lookup(&out.indices).unwrap();
        assert!(out.quantized.allclose(&z_q, 1e-5, 1e-6, false));
    }
}

#[test]
fn loss_gradients_reach_only_their_own_side() {
    let _rng = torch_rng_lock();
    tch::manual_seed(2);
    let vs = double_store();
    let vq = VectorQuantizer::new(&vs.root(), &config(6, 3)).unwrap();
    let codebook = vq.codebook();
    let z_e = Tensor::randn([4, 3, 2, 2], F64).set_requires_grad(true);

    let out = vq.forward_t(&z_e, false).unwrap();
    out.codebook_loss.as_ref().unwrap().backward();
    assert!(
        !z_e.grad().defined(),
        "the codebook loss must not reach z_e"
    );
    assert!(
        codebook.grad().defined(),
        "the codebook loss must reach the codebook"
    );
    // ∂/∂e_k of Σ‖sg[z_e] − e_k‖² / N = 2 Σ_{i→k} (e_k − z_e,i) / N.
    let rows = grid_rows(&z_e.detach());
    let idx = out.indices.reshape([-1]);
    let expected = Tensor::zeros([6, 3], F64).index_add(
        0,
        &idx,
        &((codebook.detach().index_select(0, &idx) - &rows) * (2.0 / 4.0)),
    );
    assert!(codebook.grad().allclose(&expected, 1e-12, 1e-12, false));

    let mut cb = codebook.shallow_clone();
    cb.zero_grad();
    let out = vq.forward_t(&z_e, false).unwrap();
    out.commitment_loss.backward();
    assert_eq!(
        scalar(&codebook.grad().abs().max()),
        0.0,
        "commitment loss reached the codebook"
    );
    // ∂/∂z_e of β Σ‖z_e − sg[z_q]‖² / N = 2β (z_e − z_q) / N.
    let z_q = vq.lookup(&out.indices).unwrap().detach();
    let expected = (z_e.detach() - z_q) * (2.0 * 0.25 / 4.0);
    assert!(z_e.grad().allclose(&expected, 1e-12, 1e-12, false));
}

/// Brute force: for every vector, every code, the f64 squared distance; the first minimum.
fn brute_force_nearest(rows: &[f64], codes: &[f64], d: usize) -> Vec<i64> {
    rows.chunks(d)
        .map(|v| {
            let mut best = (f64::INFINITY, -1i64);
            for (k, e) in codes.chunks(d).enumerate() {
                let dist: f64 = v.iter().zip(e).map(|(a, b)| (a - b) * (a - b)).sum();
                if dist < best.0 {
                    best = (dist, k as i64);
                }
            }
            best.1
        })
        .collect()
}

#[test]
fn nearest_codes_equal_brute_force() {
    let _rng = torch_rng_lock();
    tch::manual_seed(3);
    for (k, d) in [(7, 5), (50, 3), (1, 4)] {
        let vs = double_store();
        let vq = VectorQuantizer::new(&vs.root(), &config(k, d)).unwrap();
        vq.set_codebook(&Tensor::randn([k, d], F64)).unwrap();
        let codes = values(&vq.codebook());

        let grid = Tensor::randn([3, d, 4, 5], F64);
        let expected = brute_force_nearest(&values(&grid_rows(&grid)), &codes, d as usize);
        let out = vq.forward_t(&grid, false).unwrap();
        assert_eq!(out.indices.size(), [3, 4, 5]);
        assert_eq!(ints(&out.indices), expected, "forward_t, K = {k}, d = {d}");
        assert_eq!(
            ints(&vq.nearest_codes(&grid).unwrap()),
            expected,
            "nearest_codes"
        );
        // Quantised vectors are those codes, position by position.
        let z_q = values(&grid_rows(&out.quantized));
        for (i, &code) in expected.iter().enumerate() {
            for c in 0..d as usize {
                let want = codes[code as usize * d as usize + c];
                assert_close(z_q[i * d as usize + c], want, 1e-12, "quantized value");
            }
        }

        let rows = Tensor::randn([17, d], F64);
        let expected = brute_force_nearest(&values(&rows), &codes, d as usize);
        let out = vq.forward_t(&rows, false).unwrap();
        assert_eq!(out.indices.size(), [17]);
        assert_eq!(ints(&out.indices), expected, "rows, K = {k}, d = {d}");
    }
}

#[test]
fn ema_update_matches_a_hand_worked_example() {
    let _rng = torch_rng_lock();
    let ema_config = |epsilon: f64| QuantizerConfig {
        update: CodebookUpdate::Ema {
            decay: 0.5,
            epsilon,
        },
        ..config(2, 2)
    };
    // Codes e0 = (0, 0), e1 = (10, 10); vectors (1, 0), (0, 1) → e0 and (9, 10) → e1.
    let data = Tensor::from_slice(&[1.0, 0.0, 0.0, 1.0, 9.0, 10.0]).reshape([3, 2]);
    let start = Tensor::from_slice(&[0.0, 0.0, 10.0, 10.0]).reshape([2, 2]);

    // ε = 0.1, one step. N = 0.5·[1, 1] + 0.5·[2, 1] = [1.5, 1];
    // m0 = 0.5·(0, 0) + 0.5·(1, 1) = (0.5, 0.5); m1 = 0.5·(10, 10) + 0.5·(9, 10) = (9.5, 10);
    // n = 2.5; Ñ0 = 1.6 / 2.7 · 2.5 = 40/27, Ñ1 = 1.1 / 2.7 · 2.5 = 55/54;
    // e0 = (0.5, 0.5) · 27/40 = (27/80, 27/80), e1 = (9.5, 10) · 54/55 = (513/55, 108/11).
    let vs = double_store();
    let vq = VectorQuantizer::new(&vs.root(), &ema_config(0.1)).unwrap();
    vq.set_codebook(&start).unwrap();
    let out = vq.forward_t(&data, true).unwrap();
    assert!(out.codebook_loss.is_none());
    assert_eq!(ints(&out.indices), [0, 0, 1]);
    assert_eq!(ints(&out.usage), [2, 1]);
    // The batch was quantised with the codebook before the update.
    assert_eq!(values(&out.quantized), [0.0, 0.0, 0.0, 0.0, 10.0, 10.0]);
    let sizes = values(&vq.ema_cluster_sizes().unwrap());
    let sums = values(&vq.ema_sums().unwrap());
    let codes = values(&vq.codebook());
    for (got, want) in sizes.iter().zip([1.5, 1.0]) {
        assert_close(*got, want, 1e-12, "EMA cluster size");
    }
    for (got, want) in sums.iter().zip([0.5, 0.5, 9.5, 10.0]) {
        assert_close(*got, want, 1e-12, "EMA sum");
    }
    for (got, want) in codes
        .iter()
        .zip([27.0 / 80.0, 27.0 / 80.0, 513.0 / 55.0, 108.0 / 11.0])
    {
        assert_close(*got, want, 1e-12, "EMA codebook, ε = 0.1");
    }
    // Evaluation leaves everything as it is.
    vq.forward_t(&data, false).unwrap();
    assert_eq!(values(&vq.codebook()), codes);

    // ε = 0, two steps: e = m / N exactly. Step 1: e0 = (0.5, 0.5) / 1.5 = (1/3, 1/3),
    // e1 = (9.5, 10). Step 2 (same assignments): N = 0.5·[1.5, 1] + 0.5·[2, 1] = [1.75, 1],
    // m0 = 0.5·(0.5, 0.5) + 0.5·(1, 1) = (0.75, 0.75), m1 = 0.5·(9.5, 10) + 0.5·(9, 10)
    // = (9.25, 10); e0 = (3/7, 3/7), e1 = (9.25, 10).
    let vs = double_store();
    let vq = VectorQuantizer::new(&vs.root(), &ema_config(0.0)).unwrap();
    vq.set_codebook(&start).unwrap();
    vq.forward_t(&data, true).unwrap();
    for (got, want) in values(&vq.codebook())
        .iter()
        .zip([1.0 / 3.0, 1.0 / 3.0, 9.5, 10.0])
    {
        assert_close(*got, want, 1e-12, "EMA codebook, step 1");
    }
    let out = vq.forward_t(&data, true).unwrap();
    assert_eq!(ints(&out.indices), [0, 0, 1]);
    for (got, want) in values(&vq.ema_cluster_sizes().unwrap())
        .iter()
        .zip([1.75, 1.0])
    {
        assert_close(*got, want, 1e-12, "EMA cluster size, step 2");
    }
    for (got, want) in values(&vq.codebook())
        .iter()
        .zip([3.0 / 7.0, 3.0 / 7.0, 9.25, 10.0])
    {
        assert_close(*got, want, 1e-12, "EMA codebook, step 2");
    }
}

/// Three tight clusters around (0, 0), (5, 0) and (0, 5), 30 points each.
fn three_clusters() -> Tensor {
    let centres = Tensor::from_slice(&[0.0, 0.0, 5.0, 0.0, 0.0, 5.0]).reshape([3, 1, 2]);
    (centres + Tensor::randn([3, 30, 2], F64) * 0.1).reshape([90, 2])
}

/// The distance from each code to its nearest data vector.
fn distance_to_data(codes: &Tensor, data: &Tensor) -> Vec<f64> {
    let diff = codes.unsqueeze(1) - data.unsqueeze(0);
    values(
        &diff
            .square()
            .sum_dim_intlist(2, false, None::<Kind>)
            .min_dim(1, false)
            .0
            .sqrt(),
    )
}

#[test]
fn dead_codes_are_reseeded_from_the_batch() {
    let _rng = torch_rng_lock();
    tch::manual_seed(4);
    for update in [CodebookUpdate::Loss, CodebookUpdate::ema()] {
        let data = three_clusters();
        let vs = double_store();
        let vq = VectorQuantizer::new(
            &vs.root(),
            &QuantizerConfig {
                update: update.clone(),
                dead_code_steps: 3,
                ..config(4, 2)
            },
        )
        .unwrap();
        // Three codes on the clusters, one far from every vector.
        let start =
            Tensor::from_slice(&[0.0, 0.0, 5.0, 0.0, 0.0, 5.0, 100.0, 100.0]).reshape([4, 2]);
        vq.set_codebook(&start).unwrap();
        for step in 1..=2 {
            let out = vq.forward_t(&data, true).unwrap();
            assert_eq!(ints(&out.usage)[3], 0);
            assert_eq!(
                ints(&vq.steps_unused()),
                [0, 0, 0, step],
                "{}",
                update.name()
            );
            let far = distance_to_data(&vq.codebook(), &data)[3];
            assert!(far > 100.0, "code 3 moved before its time ({far})");
        }
        let out = vq.forward_t(&data, true).unwrap();
        assert_eq!(ints(&out.usage)[3], 0);
        if let Some(codebook_loss) = &out.codebook_loss {
            // The in-place restart leaves this step's graph usable.
            codebook_loss.backward();
            assert!(vq.codebook().grad().defined());
        }
        // Third unused step: re-seeded to a vector of the batch, counter reset.
        assert_eq!(ints(&vq.steps_unused()), [0, 0, 0, 0]);
        let dist = distance_to_data(&vq.codebook(), &data);
        assert!(
            dist[3] < 1e-12,
            "code 3 not re-seeded onto a data vector ({dist:?}, {})",
            update.name()
        );
        // Usage recovers: the next batch uses it.
        let out = vq.forward_t(&data, true).unwrap();
        let usage = ints(&out.usage);
        assert!(
            usage[3] > 0,
            "re-seeded code unused: {usage:?} ({})",
            update.name()
        );
        assert!(usage.iter().all(|&u| u > 0));
        assert!(scalar(&out.perplexity) > 3.0);
        assert!(distance_to_data(&vq.codebook(), &data)[3] < 0.5);
    }
}

/// Mean squared quantisation error of `data` under `vq`'s codebook.
fn distortion(vq: &VectorQuantizer, data: &Tensor) -> f64 {
    let z_q = vq.lookup(&vq.nearest_codes(data).unwrap()).unwrap();
    scalar(
        &(data - z_q)
            .square()
            .sum_dim_intlist(1, false, None::<Kind>)
            .mean(Kind::Double),
    )
}

#[test]
fn kmeans_init_reduces_distortion() {
    let _rng = torch_rng_lock();
    tch::manual_seed(5);
    // Eight blobs in 4 dimensions, 100 vectors each.
    let centres = Tensor::randn([8, 1, 4], F64) * 3.0;
    let data = (centres + Tensor::randn([8, 100, 4], F64) * 0.3).reshape([800, 4]);
    let vs = double_store();
    let vq = VectorQuantizer::new(&vs.root(), &config(8, 4)).unwrap();
    let uniform_init = distortion(&vq, &data);
    vq.kmeans_init(&data, 0).unwrap();
    let random_rows = distortion(&vq, &data);
    vq.kmeans_init(&data, 20).unwrap();
    let kmeans = distortion(&vq, &data);
    assert!(
        kmeans < random_rows && kmeans < uniform_init,
        "k-means {kmeans}, random data vectors {random_rows}, uniform init {uniform_init}"
    );
    assert!(
        kmeans < 0.5 * random_rows,
        "k-means {kmeans}, random data vectors {random_rows}"
    );
    assert!(vq.is_initialized());
}

#[test]
fn kmeans_init_runs_once_on_the_first_training_batch() {
    let _rng = torch_rng_lock();
    let make = || {
        let vs = double_store();
        let vq = VectorQuantizer::new(
            &vs.root(),
            &QuantizerConfig {
                kmeans_init: true,
                kmeans_iters: 5,
                ..config(4, 2)
            },
        )
        .unwrap();
        (vs, vq)
    };
    tch::manual_seed(6);
    let data = three_clusters().reshape([9, 10, 2]).permute([0, 2, 1]); // a [9, 2, 10] grid
    let (_vs, vq) = make();
    let before = vq.codebook().detach_copy();
    vq.forward_t(&data, false).unwrap();
    assert!(!vq.is_initialized(), "evaluation must not initialise");
    assert!(vq.codebook().equal(&before));
    vq.forward_t(&data, true).unwrap();
    assert!(vq.is_initialized());
    let first = vq.codebook().detach_copy();
    assert!(!first.equal(&before));
    // Every cluster has a code on it now.
    let out = vq.forward_t(&data, true).unwrap();
    assert!(scalar(&out.perplexity) > 2.9);
    vq.forward_t(&(data.shallow_clone() + 7.0), true).unwrap();
    assert!(vq.codebook().equal(&first), "k-means ran twice");

    // Seeded through libtorch's generator: the same seed gives the same codebook.
    tch::manual_seed(6);
    let data = three_clusters().reshape([9, 10, 2]).permute([0, 2, 1]);
    let (_vs, again) = make();
    again.forward_t(&data, true).unwrap();
    assert!(again.codebook().equal(&first));
}

#[test]
fn losses_equal_their_formulas() {
    let _rng = torch_rng_lock();
    // Codes e0 = (0, 0), e1 = (4, 0). Grid [N = 2, d = 2, H = 1, W = 2]:
    // example 0 holds (1, 0) → e0 and (3, 1) → e1, example 1 holds (0, 2) → e0 and (5, 0) → e1.
    // Squared errors 1, 2, 4, 1: total 8 over N = 2 examples and 8 elements.
    let z_e = Tensor::from_slice(&[1.0, 3.0, 0.0, 1.0, 0.0, 5.0, 2.0, 0.0]).reshape([2, 2, 1, 2]);
    let codes = Tensor::from_slice(&[0.0, 0.0, 4.0, 0.0]).reshape([2, 2]);
    let cases = [
        (LossReduction::PerExample, 1.0, 0.25, 8.0 / 2.0),
        (LossReduction::Mean, 1.0, 0.25, 8.0 / 8.0),
        (LossReduction::PerExample, 2.0, 0.5, 8.0 / 2.0),
    ];
    for (reduction, codebook_weight, commitment_weight, squared_error) in cases {
        let vs = double_store();
        let vq = VectorQuantizer::new(
            &vs.root(),
            &QuantizerConfig {
                reduction,
                codebook_weight,
                commitment_weight,
                ..config(2, 2)
            },
        )
        .unwrap();
        vq.set_codebook(&codes).unwrap();
        let out = vq.forward_t(&z_e, true).unwrap();
        assert_eq!(out.indices.size(), [2, 1, 2]);
        assert_eq!(ints(&out.indices), [0, 1, 0, 1]);
        let codebook_loss = scalar(out.codebook_loss.as_ref().unwrap());
        let commitment = scalar(&out.commitment_loss);
        assert_close(
            codebook_loss,
            codebook_weight * squared_error,
            1e-12,
            "codebook loss",
        );
        assert_close(
            commitment,
            commitment_weight * squared_error,
            1e-12,
            "commitment loss",
        );
        assert_close(
            scalar(&out.loss()),
            codebook_loss + commitment,
            1e-12,
            "loss()",
        );
        // Usage [2, 2] is uniform over K = 2 codes.
        assert_eq!(ints(&out.usage), [2, 2]);
        assert_eq!(out.active_codes().unwrap(), 2);
        assert_close(scalar(&out.perplexity), 2.0, 1e-12, "perplexity, uniform");
    }
}

#[test]
fn perplexity_is_k_for_uniform_usage_and_one_for_a_single_code() {
    let _rng = torch_rng_lock();
    tch::manual_seed(7);
    let vs = nn::VarStore::new(Device::Cpu);
    let vq = VectorQuantizer::new(&vs.root(), &config(16, 3)).unwrap();
    let codes = Tensor::randn([16, 3], (Kind::Float, Device::Cpu));
    vq.set_codebook(&codes).unwrap();
    // Every code three times.
    let uniform = codes.repeat([3, 1]);
    let out = vq.forward_t(&uniform, false).unwrap();
    assert_eq!(ints(&out.usage), vec![3; 16]);
    assert_close(scalar(&out.perplexity), 16.0, 1e-4, "perplexity, uniform");
    // Every vector next to code 5.
    let one = codes.get(5).unsqueeze(0).repeat([40, 1])
        + Tensor::randn([40, 3], (Kind::Float, Device::Cpu)) * 1e-4;
    let out = vq.forward_t(&one, false).unwrap();
    assert_eq!(out.active_codes().unwrap(), 1);
    assert_close(scalar(&out.perplexity), 1.0, 1e-6, "perplexity, one code");
    // The free function on counts summed over batches.
    let total = perplexity(&Tensor::from_slice(&[3i64, 3, 3, 3, 0, 0])).unwrap();
    assert_close(scalar(&total), 4.0, 1e-5, "perplexity of counts");
}

#[test]
fn lookup_inverts_the_forward_pass() {
    let _rng = torch_rng_lock();
    tch::manual_seed(8);
    let vs = double_store();
    let vq = VectorQuantizer::new(&vs.root(), &config(9, 3)).unwrap();
    vq.set_codebook(&Tensor::randn([9, 3], F64)).unwrap();
    for shape in [vec![2, 3, 4, 5], vec![2, 3, 7], vec![11, 3]] {
        let z_e = Tensor::randn(shape.as_slice(), F64);
        let out = vq.forward_t(&z_e, false).unwrap();
        let decoded = vq.lookup(&out.indices).unwrap();
        assert_eq!(decoded.size(), shape);
        assert!(
            decoded.allclose(&out.quantized, 1e-12, 1e-12, false),
            "{shape:?}"
        );
        let from_int32 = vq.lookup(&out.indices.to_kind(Kind::Int)).unwrap();
        assert!(from_int32.equal(&decoded));
    }
    // A PixelCNN's sample: any index grid decodes.
    let grid = Tensor::from_slice(&[0i64, 8, 4, 4]).reshape([1, 2, 2]);
    let decoded = vq.lookup(&grid).unwrap();
    assert_eq!(decoded.size(), [1, 3, 2, 2]);
    assert!(decoded
        .get(0)
        .select(1, 0)
        .select(1, 1)
        .equal(&vq.codebook().get(8)));
}

#[test]
fn state_lives_in_the_var_store_and_survives_a_checkpoint() {
    let _rng = torch_rng_lock();
    tch::manual_seed(9);
    let cfg = QuantizerConfig {
        update: CodebookUpdate::ema(),
        dead_code_steps: 2,
        ..config(8, 3)
    };
    let vs = nn::VarStore::new(Device::Cpu);
    let vq = VectorQuantizer::new(&vs.root().sub("vq"), &cfg).unwrap();
    let mut names: Vec<String> = vs.variables().into_keys().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "vq.codebook",
            "vq.ema_count",
            "vq.ema_sum",
            "vq.initialized",
            "vq.steps_unused"
        ]
    );
    assert!(
        vs.trainable_variables().is_empty(),
        "an EMA codebook is not for the optimiser"
    );
    let z_e = Tensor::randn([4, 3, 2, 2], (Kind::Float, Device::Cpu));
    vq.kmeans_init(&z_e, 3).unwrap();
    vq.forward_t(&z_e, true).unwrap();
    let mut bytes = Vec::new();
    vs.save_to_stream(&mut bytes).unwrap();

    let mut restored_vs = nn::VarStore::new(Device::Cpu);
    let restored = VectorQuantizer::new(&restored_vs.root().sub("vq"), &cfg).unwrap();
    assert!(!restored.is_initialized());
    restored_vs
        .load_from_stream(std::io::Cursor::new(bytes))
        .unwrap();
    assert!(restored.is_initialized());
    assert!(restored.codebook().equal(&vq.codebook()));
    assert!(restored.ema_sums().unwrap().equal(&vq.ema_sums().unwrap()));
    assert!(restored
        .ema_cluster_sizes()
        .unwrap()
        .equal(&vq.ema_cluster_sizes().unwrap()));
    assert!(restored.steps_unused().equal(&vq.steps_unused()));

    let vs = nn::VarStore::new(Device::Cpu);
    let _ = VectorQuantizer::new(&vs.root(), &config(8, 3)).unwrap();
    assert_eq!(
        vs.trainable_variables().len(),
        1,
        "the codebook-loss codebook is trainable"
    );
}

fn argument_name(result: Result<impl std::fmt::Debug, SamplerError>) -> (&'static str, String) {
    match result {
        Err(err @ SamplerError::InvalidArgument { name, .. }) => (name, err.to_string()),
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

fn config_field(config: QuantizerConfig) -> &'static str {
    let vs = nn::VarStore::new(Device::Cpu);
    match VectorQuantizer::new(&vs.root(), &config) {
        Err(SamplerError::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn errors_name_the_argument() {
    let _rng = torch_rng_lock();
    let base = config(4, 3);
    assert_eq!(
        config_field(QuantizerConfig {
            num_codes: 0,
            ..base.clone()
        }),
        "num_codes"
    );
    assert_eq!(
        config_field(QuantizerConfig {
            code_dim: -2,
            ..base.clone()
        }),
        "code_dim"
    );
    let field = config_field(QuantizerConfig {
        commitment_weight: -1.0,
        ..base.clone()
    });
    assert_eq!(field, "commitment_weight");
    let field = config_field(QuantizerConfig {
        codebook_weight: f64::NAN,
        ..base.clone()
    });
    assert_eq!(field, "codebook_weight");
    let ema = |decay, epsilon| QuantizerConfig {
        update: CodebookUpdate::Ema { decay, epsilon },
        ..base.clone()
    };
    assert_eq!(config_field(ema(1.0, 1e-5)), "update.decay");
    assert_eq!(config_field(ema(0.99, -1.0)), "update.epsilon");
    let err = toml::from_str::<QuantizerConfig>("beta = 0.3").unwrap_err();
    assert!(err.to_string().contains("beta"), "{err}");

    let vs = nn::VarStore::new(Device::Cpu);
    let vq = VectorQuantizer::new(&vs.root(), &base).unwrap();
    let f32s = (Kind::Float, Device::Cpu);
    let (name, msg) = argument_name(vq.forward_t(&Tensor::zeros([2, 5, 4, 4], f32s), true));
    assert_eq!(name, "z_e");
    assert!(
        msg.contains("5 channels") && msg.contains("code_dim is 3"),
        "{msg}"
    );
    let (name, msg) = argument_name(vq.forward_t(&Tensor::zeros([3], f32s), true));
    assert_eq!(name, "z_e");
    assert!(msg.contains("rank 1"), "{msg}");
    let (name, msg) = argument_name(vq.forward_t(&Tensor::zeros([0, 3], f32s), true));
    assert_eq!(name, "z_e");
    assert!(msg.contains("no vectors"), "{msg}");
    let (name, msg) = argument_name(vq.forward_t(&Tensor::zeros([2, 3], F64), true));
    assert_eq!(name, "z_e");
    assert!(msg.contains("Double"), "{msg}");
    let (name, _) = argument_name(vq.nearest_codes(&Tensor::zeros([2, 4], f32s)));
    assert_eq!(name, "z_e");
    let (name, _) = argument_name(vq.kmeans_init(&Tensor::zeros([2, 4, 2, 2], f32s), 3));
    assert_eq!(name, "z_e");

    let (name, msg) = argument_name(vq.lookup(&Tensor::from_slice(&[0i64, 4])));
    assert_eq!(name, "indices");
    assert!(msg.contains("[0, 4)"), "{msg}");
    let (name, _) = argument_name(vq.lookup(&Tensor::from_slice(&[-1i64])));
    assert_eq!(name, "indices");
    let (name, msg) = argument_name(vq.lookup(&Tensor::from_slice(&[1.0f32])));
    assert_eq!(name, "indices");
    assert!(msg.contains("integers"), "{msg}");
    let (name, _) = argument_name(vq.lookup(&Tensor::from(2i64)));
    assert_eq!(name, "indices");

    let (name, msg) = argument_name(vq.set_codebook(&Tensor::zeros([3, 3], f32s)));
    assert_eq!(name, "values");
    assert!(msg.contains("[4, 3]"), "{msg}");
    let (name, _) = argument_name(perplexity(&Tensor::from_slice(&[0i64, 0])));
    assert_eq!(name, "counts");
    let (name, _) = argument_name(perplexity(&Tensor::from_slice(&[1.0f64, -1.0, 2.0])));
    assert_eq!(name, "counts");
}
