//! PCA on data with known low-rank structure, against closed forms and the covariance
//! eigenvalues.

use genae_zoo::{GenerativeDecoder, Pca};
use tch::{Device, Kind, Tensor};

const F64: (Kind, Device) = (Kind::Double, Device::Cpu);

/// `N` points `U diag(s) Qᵀ + m (+ noise)`, with `Q` `[D, r]` orthonormal and the columns of
/// `U` `[N, r]` orthonormal and centred, so the centred data has singular values exactly `s`
/// (before noise) and right singular vectors the columns of `Q`.
fn low_rank(n: i64, d: i64, singular_values: &[f64], noise: f64) -> (Tensor, Tensor) {
    let r = singular_values.len() as i64;
    let (q, _) = Tensor::linalg_qr(&Tensor::randn([d, r], F64), "reduced");
    let a = Tensor::randn([n, r], F64);
    let a = &a - a.mean_dim(0, true, None::<Kind>);
    let (u, _) = Tensor::linalg_qr(&a, "reduced");
    let s = Tensor::from_slice(singular_values);
    let data = (u * s).matmul(&q.tr()) + Tensor::randn([1, d], F64) * 3.0;
    (data + Tensor::randn([n, d], F64) * noise, q)
}

#[test]
fn recovers_known_explained_variances_and_axes() {
    tch::manual_seed(11);
    let (n, d) = (400, 12);
    let s = [30.0, 12.0, 5.0];
    let (data, q) = low_rank(n, d, &s, 1e-6);
    let pca = Pca::fit(&data, 3).unwrap();
    let got = Vec::<f64>::try_from(pca.explained_variance()).unwrap();
    for (g, s) in got.iter().zip(s) {
        let want = s * s / (n - 1) as f64;
        assert!((g - want).abs() < 1e-6 * want, "{g} vs {want}");
    }
    // The components span the planted subspace: |Qᵀ Vₖᵀ| is a signed permutation (identity).
    let overlap = q.tr().matmul(&pca.components().tr()).abs();
    assert!(
        overlap.allclose(&Tensor::eye(3, F64), 0.0, 1e-6, false),
        "{overlap}"
    );
    // Orthonormal rows, sign convention.
    let gram = pca.components().matmul(&pca.components().tr());
    assert!(gram.allclose(&Tensor::eye(3, F64), 0.0, 1e-10, false));
    let largest = pca.components().abs().argmax(1, true);
    let signs = pca.components().gather(1, &largest, false);
    assert!(signs.gt(0.0).all().int64_value(&[]) == 1);
    // Three components explain (almost) everything; reconstructions carry only the noise.
    let ratio = pca
        .explained_variance_ratio()
        .sum(Kind::Double)
        .double_value(&[]);
    assert!(ratio > 1.0 - 1e-9, "{ratio}");
    assert!(pca.mean_squared_error(&data).unwrap() < 1e-11);
}

#[test]
fn full_rank_reconstruction_is_exact() {
    tch::manual_seed(12);
    let (n, d) = (200, 8);
    let (data, _) = low_rank(n, d, &[10.0, 4.0, 1.0], 0.1);
    let pca = Pca::fit(&data, d).unwrap();
    assert!(pca.mean_squared_error(&data).unwrap() < 1e-24);
    let recon = pca.reconstruct(&data).unwrap();
    assert!(recon.allclose(&data, 0.0, 1e-10, false));
    // decode ∘ encode through the generic decoder trait too.
    let codes = pca.encode(&data).unwrap();
    assert_eq!(codes.size(), vec![n, d]);
    assert!(pca
        .decode_mean(&codes)
        .unwrap()
        .allclose(&data, 0.0, 1e-10, false));
    // Single-precision input comes back in single precision.
    let data32 = data.to_kind(Kind::Float);
    assert_eq!(pca.reconstruct(&data32).unwrap().kind(), Kind::Float);
}

#[test]
fn explained_variances_are_the_covariance_eigenvalues() {
    tch::manual_seed(13);
    let (n, d) = (300i64, 7i64);
    let data = Tensor::randn([n, d], F64).matmul(&Tensor::randn([d, d], F64));
    let pca = Pca::fit(&data, d).unwrap();
    // Independent route: eigenvalues of the sample covariance, by a symmetric eigensolver.
    let centred = &data - data.mean_dim(0, true, None::<Kind>);
    let cov = centred.tr().matmul(&centred) / (n - 1) as f64;
    let eig = cov.linalg_eigvalsh("L").flip([0]); // descending
    assert!(
        pca.explained_variance().allclose(&eig, 1e-9, 1e-9, false),
        "{} vs {eig}",
        pca.explained_variance()
    );
    let total = cov.trace().double_value(&[]);
    assert!((pca.total_variance() - total).abs() < 1e-9 * total);
    // With k components, the squared error per example is the sum of the left-out
    // eigenvalues (times (N − 1)/N), so the MSE per entry is that over D.
    let k = 3;
    let pca_k = Pca::fit(&data, k).unwrap();
    let rest = eig.narrow(0, k, d - k).sum(Kind::Double).double_value(&[]);
    let want = rest * (n - 1) as f64 / n as f64 / d as f64;
    let got = pca_k.mean_squared_error(&data).unwrap();
    assert!((got - want).abs() < 1e-9 * want, "{got} vs {want}");
}

#[test]
fn invalid_component_counts_name_the_field() {
    let data = Tensor::randn([10, 4], F64);
    for k in [0, 5] {
        let err = Pca::fit(&data, k).unwrap_err().to_string();
        assert!(
            err.contains("n_components") && err.contains("[10, 4]"),
            "{err}"
        );
    }
    let err = Pca::fit(&Tensor::randn([1, 4], F64), 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("N ≥ 2"), "{err}");
    let pca = Pca::fit(&data, 2).unwrap();
    assert!(pca.decode(&Tensor::zeros([3, 3], F64)).is_err());
    assert!(pca.encode(&Tensor::zeros([3, 5], F64)).is_err());
}

#[test]
fn fits_on_cuda_match_the_cpu_when_a_gpu_is_present() {
    if !tch::Cuda::is_available() {
        assert!(
            std::env::var_os("GENAE_REQUIRE_CUDA").is_none(),
            "CUDA is required here (GENAE_REQUIRE_CUDA is set) but absent"
        );
        eprintln!("skipping: no CUDA device to compare with the CPU");
        return;
    }
    tch::manual_seed(14);
    let data = Tensor::randn([100, 6], F64).matmul(&Tensor::randn([6, 6], F64));
    let cpu = Pca::fit(&data, 3).unwrap();
    let gpu = Pca::fit(&data.to_device(Device::Cuda(0)), 3).unwrap();
    assert_eq!(gpu.components().device(), Device::Cuda(0));
    let same = |a: &Tensor, b: &Tensor| a.allclose(&b.to_device(Device::Cpu), 1e-8, 1e-8, false);
    assert!(same(cpu.explained_variance(), gpu.explained_variance()));
    assert!(same(cpu.components(), gpu.components()));
}
