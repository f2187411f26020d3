//! How `genae` words an error for its user: the cause chain without repeats, libtorch's C++
//! stack cut, a hint when memory ran out.

/// The error and its causes, each cause left out when the message before it already says it
/// (errors that print their source in their own message would otherwise repeat it).
pub(crate) fn chain_message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// An error message without libtorch's C++ stack (the `frame #N:` lines and what follows
/// `Exception raised from`), with a hint on what to lower when libtorch ran out of memory.
pub(crate) fn user_message(message: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in message.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("frame #") || trimmed.starts_with("Exception raised from") {
            break;
        }
        lines.push(line);
    }
    let mut text = lines.join("\n").trim_end().to_string();
    if text.contains("can't allocate memory") || text.contains("out of memory") {
        text.push_str(
            "\n(out of memory: lower train.batch_size, eval.batch_size or the samples per \
             example, train.iwae_k / train.dvae_copies × train.dvae_samples)",
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{chain_message, user_message};

    #[test]
    fn causes_already_in_the_message_are_not_repeated() {
        let io = std::io::Error::other("No space left on device");
        let e = anyhow::Error::new(io).context("writing `x`: No space left on device");
        assert_eq!(chain_message(&e), "writing `x`: No space left on device");
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(chain_message(&e), "outer: inner");
    }

    #[test]
    fn libtorch_stacks_are_cut_and_out_of_memory_gets_a_hint() {
        let raw = "libtorch: Internal torch error: [enforce fail at alloc_cpu.cpp:127] err == 0. \
                   DefaultCPUAllocator: can't allocate memory: you tried to allocate 1024 bytes.\n\
                   frame #0: c10::ThrowEnforceNotMet(char const*) + 0x6a\n\
                   frame #1: c10::alloc_cpu(unsigned long) + 0x365\n";
        let text = user_message(raw);
        assert!(!text.contains("frame #"), "{text}");
        assert!(text.contains("you tried to allocate 1024 bytes."), "{text}");
        assert!(text.contains("lower train.batch_size"), "{text}");
        let plain = "config `x.toml`: field `seed`: must be a number";
        assert_eq!(user_message(plain), plain);
        let raised = "libtorch: shape '[2, 3]' is invalid\nException raised from view at a.cpp:1";
        assert_eq!(user_message(raised), "libtorch: shape '[2, 3]' is invalid");
    }
}
