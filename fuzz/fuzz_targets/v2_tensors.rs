//! Any bytes as an Open Inference Protocol ModelInferRequest against the bundled model: decoding
//! and scoring either refuse it with violations naming a tensor, or answer outputs whose shapes
//! and byte lengths agree with the rows scored. Never a panic, never an allocation sized by a shape.
#![no_main]
mod shared;
use churn::inference::ModelInferRequest;
use churn::serve::v2::model_infer;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = ModelInferRequest::decode(data) else {
        return;
    };
    match model_infer(shared::telco_model(), &req, false, 1000) {
        Ok(resp) => {
            let raw = !resp.raw_output_contents.is_empty();
            for (k, o) in resp.outputs.iter().enumerate() {
                let n: i64 = o.shape.iter().product();
                if raw && o.datatype == "FP64" {
                    assert_eq!(resp.raw_output_contents[k].len() as i64, n * 8);
                }
                if !raw && o.datatype == "FP64" {
                    let v = &o.contents.as_ref().unwrap().fp64_contents;
                    assert_eq!(v.len() as i64, n);
                    assert!(v.iter().all(|x| x.is_finite()));
                }
            }
        }
        Err(churn::Error::InvalidTensors(v)) => {
            assert!(!v.is_empty());
        }
        Err(churn::Error::ModelNotFound(_)) => unreachable!("no lookup here"),
        Err(e) => panic!("unexpected error kind: {e}"),
    }
});
