//! Model compression, joining a saved model to the training engine:
//! distillation of a model — a tuned ensemble, typically — into one
//! network trained on its predictions, and the before-and-after figures
//! every compression reports (size on disk, prediction time, the metrics
//! on held-out rows).

use std::time::Instant;

use gradus_data::{Dataset, Target};
use gradus_train::{Compression, Ensemble, Metrics, Observer, SavedModel, TrainConfig, Trainer, probabilities};
use serde::Serialize;

use crate::pipeline::{PipelineError, TrainJob, TrainOutcome};

/// A model's figures on held-out rows.
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    /// The model file's size in bytes.
    pub bytes: usize,
    /// Milliseconds to compute the outputs of 1,000 rows already read and
    /// encoded (preprocessing included): the median of seven passes over
    /// the held-out rows, repeated to at least [`TIMED_ROWS`] rows so that
    /// a pass is long enough to time.
    pub ms_per_1000_rows: f64,
    pub metrics: Metrics,
}

/// The fewest rows a timed pass of [`figures`] predicts.
pub const TIMED_ROWS: usize = 20_000;

/// [`Figures`] of `model` on `held_out`.
pub fn figures(model: &Ensemble, held_out: &Dataset) -> Result<Figures, PipelineError> {
    let bytes = model.to_bytes().map_err(|e| PipelineError::Unsuitable(e.to_string()))?.len();
    let metrics = model.evaluate(held_out.clone())?;
    let n = held_out.n_samples().max(1);
    let repeated: Vec<usize> = (0..TIMED_ROWS.div_ceil(n) * n).map(|i| i % n).collect();
    let timed = held_out.subset(&repeated);
    let mut times: Vec<f64> = (0..7)
        .map(|_| {
            let rows = timed.clone();
            let started = Instant::now();
            let out = model.outputs_of(rows);
            let seconds = started.elapsed().as_secs_f64();
            out.map(|_| seconds)
        })
        .collect::<Result<_, _>>()?;
    times.sort_by(f64::total_cmp);
    let ms_per_1000_rows = times[3] * 1e6 / repeated.len() as f64;
    Ok(Figures { bytes, ms_per_1000_rows, metrics })
}

/// What the teacher says of each row of `rows`, as targets for a student
/// with `n_outputs` outputs: for classes, the teacher's probabilities (the
/// positive class's alone for one output); for a real target, its predictions.
pub fn teacher_targets(
    teacher: &Ensemble,
    rows: &Dataset,
    n_outputs: usize,
    temperature: f32,
) -> Result<Vec<f32>, PipelineError> {
    let out = teacher.outputs_of(rows.clone())?;
    if teacher.preprocessing().classes.is_none() {
        return Ok(out);
    }
    let k = teacher.n_outputs();
    // The teacher's logits over the temperature: its probabilities softened.
    let p = probabilities(&out.iter().map(|z| z / temperature).collect::<Vec<_>>(), k);
    let width = if k == 1 { 2 } else { k };
    Ok(match n_outputs {
        1 => p.chunks_exact(width).map(|row| row[1]).collect(),
        _ => p,
    })
}

/// A distilled model and how it was made.
pub struct Distilled {
    /// The student, its file recording the distillation.
    pub outcome: TrainOutcome,
    pub train_rows: usize,
    /// The rows held out for the student's validation, labelled.
    pub valid: Option<Dataset>,
}

/// Trains `student` on what `teacher` predicts for the rows of `rows`
/// (encoded as the teacher reads them, labelled): on its class
/// probabilities with soft targets (Hinton et al. 2015) — or, for a real
/// target, on its predictions. `valid_fraction` of the rows (seeded) are
/// held out, with their labels, for the student's validation.
#[allow(clippy::too_many_arguments)]
pub fn distill(
    teacher: &Ensemble,
    rows: &Dataset,
    student: &TrainJob,
    valid_fraction: f64,
    mixup: usize,
    temperature: f32,
    seed: u64,
    observer: &mut dyn Observer,
) -> Result<Distilled, PipelineError> {
    if let Some(done) = teacher.members().iter().flat_map(|m| &m.spec.compression).find(|c| c.name() == "distill") {
        return Err(PipelineError::Unsuitable(format!(
            "the model is distilled already ({}); distil the model it came from",
            done.describe()
        )));
    }
    let split = rows.split(valid_fraction, 0.0, seed)?;
    let [train, valid, _] = rows.clone().into_split(&split);
    let train = with_mixup(teacher, train, mixup, seed)?;
    let (_, n_outputs) = student.loss_and_outputs(&train)?;
    let targets = teacher_targets(teacher, &train, n_outputs, temperature)?;
    let valid = (valid.n_samples() > 0).then_some(valid);
    let mut outcome = match &train.y {
        Target::Real(_) => {
            let mut on_predictions = train.clone();
            on_predictions.y = Target::Real(targets);
            student.run_on(&on_predictions, valid.as_ref(), observer)?
        }
        Target::Classes { .. } => student.run_soft(&train, &targets, valid.as_ref(), observer)?,
    };
    // Trained at the temperature, the student's logits are the teacher's
    // over it: times the temperature, they are the teacher's own.
    if teacher.preprocessing().classes.is_some() && temperature != 1.0 {
        let k = outcome.saved.model.n_outputs();
        outcome.saved.model.rescale_outputs(&vec![temperature; k], &vec![0.0; k]);
    }
    let mut record: Vec<Compression> = teacher.members()[0].spec.compression.clone();
    record.push(Compression::Distilled {
        teacher: teacher.describe(),
        members: teacher.members().len(),
        rows: train.n_samples(),
    });
    outcome.saved.spec.compression = record;
    Ok(Distilled { train_rows: train.n_samples(), valid, outcome })
}

/// `rows` and `times` × as many more made by mixup (Zhang et al. 2018):
/// each a blend λ·a + (1 − λ)·b of two rows drawn at random, λ uniform in
/// [0, 1], labelled by what `teacher` predicts for it — a larger transfer
/// set for distillation, as Buciluǎ et al. 2006 built theirs. Rows with
/// text (sparse inputs) are not blended: they come back as they are.
pub fn with_mixup(teacher: &Ensemble, rows: Dataset, times: usize, seed: u64) -> Result<Dataset, PipelineError> {
    use rand::Rng as _;
    let n = rows.n_samples();
    if times == 0 || n < 2 || rows.sparse.is_some() {
        return Ok(rows);
    }
    let mut rng = gradus_data::seeded_rng(seed ^ 0x006d_6978_7570);
    let d = rows.x.cols();
    let mut blended = Vec::with_capacity(n * times * d);
    for _ in 0..n * times {
        let (a, b) = (rng.random_range(0..n), rng.random_range(0..n));
        let lambda: f32 = rng.random();
        let (ra, rb) = (rows.x.row(a), rows.x.row(b));
        blended.extend(ra.iter().zip(rb).map(|(x, y)| lambda * x + (1.0 - lambda) * y));
    }
    let mut extra = rows.subset(&[]);
    extra.x = gradus_data::Matrix::from_vec(n * times, d, blended).expect("rows x columns");
    // Placeholder targets of the rows' kind until the teacher's come.
    extra.y = rows.y.select(&vec![0; n * times]);
    let out = teacher.outputs_of(extra.clone())?;
    extra.y = match &rows.y {
        Target::Real(_) => Target::Real(out),
        Target::Classes { classes, .. } => Target::Classes {
            labels: gradus_train::predicted_classes(&out, teacher.n_outputs()),
            classes: classes.clone(),
        },
    };
    let mut all = rows;
    let mut x = std::mem::replace(&mut all.x, gradus_data::Matrix::zeros(0, 0)).as_slice().to_vec();
    x.extend_from_slice(extra.x.as_slice());
    all.x = gradus_data::Matrix::from_vec(n * (times + 1), d, x).expect("rows x columns");
    all.y = match (all.y, extra.y) {
        (Target::Real(mut a), Target::Real(b)) => {
            a.extend(b);
            Target::Real(a)
        }
        (Target::Classes { mut labels, classes }, Target::Classes { labels: more, .. }) => {
            labels.extend(more);
            Target::Classes { labels, classes }
        }
        _ => unreachable!("both targets are the rows' kind"),
    };
    Ok(all)
}

/// The rounds of [`prune`]: the sparsity rises over them to its target.
pub const PRUNE_ROUNDS: usize = 5;

/// Prunes every member of `model` by magnitude to `sparsity` (the share of
/// its weights set to zero) and fine-tunes what is left on the labelled
/// `rows` (encoded as the model reads them), in [`PRUNE_ROUNDS`] rounds:
/// round t of T prunes to sparsity·(1 − (1 − t/T)³), Zhu and Gupta 2017's
/// schedule, then trains up to `config.epochs` epochs with the pruned
/// weights held at zero. `valid_fraction` of the rows (seeded) are held
/// out for early stopping when `config` asks for it.
pub fn prune(
    model: &Ensemble,
    rows: &Dataset,
    sparsity: f64,
    config: &TrainConfig,
    valid_fraction: f64,
    observer: &mut dyn Observer,
) -> Result<Ensemble, PipelineError> {
    if let Some(done) = model.members().iter().flat_map(|m| &m.spec.compression).find(|c| c.name() == "prune") {
        return Err(PipelineError::Unsuitable(format!(
            "the model is pruned already ({}); prune the model it came from",
            done.describe()
        )));
    }
    gradus_train::prune::magnitude_mask(model.members()[0].model.as_ref(), sparsity)?;
    let split = rows.split(valid_fraction, 0.0, config.seed)?;
    let [train_raw, valid_raw, _] = rows.clone().into_split(&split);
    let trainer = Trainer::new(config.clone())?;
    let mut members = Vec::with_capacity(model.members().len());
    for member in model.members() {
        let prep = &member.spec.preprocessing;
        let mut train = prep.apply(&train_raw)?;
        let mut valid = (valid_raw.n_samples() > 0).then(|| prep.apply(&valid_raw)).transpose()?;
        let mut pruned = member.spec.architecture.build()?;
        pruned.params_mut().copy_from_slice(member.model.params());
        // A real target is fine-tuned in standard units, as it was trained.
        let scale = match &train.y {
            Target::Real(y) => Some(crate::pipeline::target_scale(y)?),
            Target::Classes { .. } => None,
        };
        if let Some((mean, std)) = scale {
            let standard = |d: &mut Dataset| {
                if let Target::Real(y) = &mut d.y {
                    y.iter_mut().for_each(|v| *v = ((*v as f64 - mean) / std) as f32);
                }
            };
            standard(&mut train);
            valid.iter_mut().for_each(standard);
            pruned.rescale_outputs(&[(1.0 / std) as f32], &[(-mean / std) as f32]);
        }
        let mut epochs = 0;
        for round in 1..=PRUNE_ROUNDS {
            let share = sparsity * (1.0 - (1.0 - round as f64 / PRUNE_ROUNDS as f64).powi(3));
            let mask = gradus_train::prune::magnitude_mask(pruned.as_ref(), share)?;
            let mut masked = gradus_train::prune::Masked::new(pruned.as_mut(), mask);
            let report = trainer.fit(&mut masked, member.spec.loss, &train, valid.as_ref(), observer)?;
            epochs += report.epochs;
        }
        if let Some((mean, std)) = scale {
            pruned.rescale_outputs(&[std as f32], &[mean as f32]);
        }
        let mut spec = member.spec.clone();
        spec.compression.push(Compression::Pruned { sparsity: gradus_train::prune::sparsity(pruned.as_ref()), epochs });
        members.push(SavedModel { spec, model: pruned });
    }
    let mut out = Ensemble::weighted(members, model.weights().to_vec())?;
    if let Some(about) = model.about() {
        out.set_about(about.clone());
    }
    Ok(out)
}
