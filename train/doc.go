// Package train trains, checkpoints and evaluates alexcl networks.
//
// [Run] is `alexcl train`: it builds the network a [Config] names on a
// device, streams batches from package data, and runs the paper's SGD
//
//	upload batch → Forward(train) → Loss → Backward → Step → ReadLoss
//
// reading back only the loss and the top-1/top-5 counts each step. On a
// device that can copy while it computes (device.AsyncWriter: OpenCL) the
// next batch is uploaded into a second input buffer while the current step
// runs, so no upload sits between two steps; the results are the same bits
// either way. After
// every epoch it evaluates on the test split ([Evaluate]), applies the
// learning-rate schedule (step, the paper's ÷10 on plateau, or none) and
// writes a checkpoint.
//
// # Output directory
//
//	config.toml        the resolved Config, network inline; --resume reads it
//	last.safetensors   weights at the latest checkpoint (PyTorch names and layouts)
//	best.safetensors   weights of the evaluation with the best test top-1
//	state.json         resume state: step, epoch, batch, seed, schedule, files
//	ckpt/              step-numbered weights and SGD velocities; the newest keep (3) sets
//	metrics.csv        training rows every log_every steps, one row per evaluation
//	curves.png         loss and accuracy against the step
//
// Checkpoints are crash-safe: every file is written to a temporary name,
// synced and renamed; the weights and velocities go to step-numbered files
// first and state.json, written last, is the commit point. A crash at any
// instant leaves the previous checkpoint complete. A checkpoint that fails
// removes the files it wrote; a run that starts (or resumes) removes the
// temporary files and uncommitted checkpoint files a crash left behind.
//
// # Exact resume
//
// Everything random is a function of the seed and a position: the weights
// of Init(seed), the data order and augmentation of (seed, epoch, position)
// in package data, and the dropout masks of (seed, step, layer). A resumed
// run restores the weights, velocities, schedule and (epoch, batch, step),
// so on the CPU device its weights equal an uninterrupted run's bit for bit.
//
// Cancelling Run's context (SIGINT, SIGTERM in `alexcl train`) finishes the
// current step, writes a checkpoint and returns an error wrapping
// [ErrInterrupted] that carries the command to resume. A NaN or infinite
// loss, or non-finite weights at a checkpoint, stop the run with
// [ErrDiverged], naming the step and the last good checkpoint.
//
// # Failures
//
// A run that cannot start (bad data, network, device or initial weights)
// writes nothing. A device error during training (a lost GPU, a driver
// failure) stops the run with the step, the last checkpoint and the resume
// command; running out of device memory ([ErrOutOfMemory]) also says what
// the network asked for, what the device has and which batch would fit.
package train
